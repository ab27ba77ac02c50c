//! The malware-scan hook: ClamAV's clamd over its socket, with the INSTREAM command.
//!
//! The file's plaintext is streamed to clamd in length-prefixed chunks (`zINSTREAM\0`, then
//! `<u32 big-endian length><bytes>` per chunk, then a zero length) and clamd answers one
//! line: `stream: OK`, `stream: <signature> FOUND`, or `... ERROR`. Anything but a clean
//! answer, a timeout included, quarantines the file: a scanner that cannot vouch for a file
//! does not let it through.

use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::reader::Plaintext;

/// Where clamd listens.
#[derive(Clone, Debug)]
pub enum Clamd {
    /// A Unix socket path.
    Unix(std::path::PathBuf),
    /// A TCP address (`host:port`).
    Tcp(String),
}

impl Clamd {
    /// Parses `unix:/path` or `tcp:host:port` (validated with the configuration).
    pub fn parse(spec: &str) -> Option<Clamd> {
        if let Some(path) = spec.strip_prefix("unix:") {
            return Some(Clamd::Unix(path.into()));
        }
        spec.strip_prefix("tcp:").map(|a| Clamd::Tcp(a.to_owned()))
    }
}

/// What the scanner said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing found.
    Clean,
    /// A signature matched.
    Infected(String),
    /// The scan could not complete.
    Failed(String),
}

impl Verdict {
    /// The stored form: `clean`, `infected: <name>`, `error: <why>`.
    pub fn as_stored(&self) -> String {
        match self {
            Verdict::Clean => "clean".into(),
            Verdict::Infected(name) => format!("infected: {name}"),
            Verdict::Failed(why) => format!("error: {why}"),
        }
    }
}

/// A configured clamd.
#[derive(Clone, Debug)]
pub struct Scanner {
    target: Clamd,
    timeout: Duration,
}

impl Scanner {
    /// A scanner talking to `target`, giving up after `timeout`.
    pub fn new(target: Clamd, timeout: Duration) -> Scanner {
        Scanner { target, timeout }
    }

    /// Scans the plaintext.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn scan(&self, content: Plaintext) -> Verdict {
        let work = async {
            match &self.target {
                #[cfg(unix)]
                Clamd::Unix(path) => {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    instream(stream, content).await
                }
                #[cfg(not(unix))]
                Clamd::Unix(_) => Err(std::io::Error::other("unix sockets are not supported")),
                Clamd::Tcp(address) => {
                    let stream = tokio::net::TcpStream::connect(address).await?;
                    instream(stream, content).await
                }
            }
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(e)) => Verdict::Failed(e.to_string()),
            Err(_) => Verdict::Failed("timed out".into()),
        }
    }
}

async fn instream<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    mut content: Plaintext,
) -> std::io::Result<Verdict> {
    stream.write_all(b"zINSTREAM\0").await?;
    while let Some(piece) = content.next().await {
        let piece = piece.map_err(std::io::Error::other)?;
        for part in piece.chunks(1 << 20) {
            stream.write_all(&(part.len() as u32).to_be_bytes()).await?;
            stream.write_all(part).await?;
        }
    }
    stream.write_all(&0u32.to_be_bytes()).await?;
    stream.flush().await?;
    let mut reply = Vec::new();
    // clamd answers one short line; a longer one is not clamd.
    (&mut stream).take(4096).read_to_end(&mut reply).await?;
    Ok(parse_reply(&reply))
}

fn parse_reply(reply: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(reply);
    let line = text.trim_end_matches(['\0', '\n']).trim();
    let body = line.strip_prefix("stream:").map(str::trim).unwrap_or(line);
    if body == "OK" {
        Verdict::Clean
    } else if let Some(name) = body.strip_suffix(" FOUND") {
        Verdict::Infected(name.trim().to_owned())
    } else {
        Verdict::Failed(body.chars().take(200).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_understood() {
        assert_eq!(parse_reply(b"stream: OK\0"), Verdict::Clean);
        assert_eq!(
            parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\0"),
            Verdict::Infected("Win.Test.EICAR_HDB-1".into())
        );
        assert!(matches!(
            parse_reply(b"INSTREAM size limit exceeded. ERROR\0"),
            Verdict::Failed(_)
        ));
    }
}
