//! File sharing throughput: uploading a file to Concord (one resumable-upload `PATCH`, so
//! the file is chunked, encrypted and synced to the blob store) and downloading it back
//! (decrypted and authenticated chunk by chunk, written to a file), against plain `cp` of
//! the same file on the same disk, measured back to back in each run. Concord runs as a
//! child process (release build, SQLite, local blob store); the file is read from and
//! written to the same temporary directory as the server's data. The page cache is warm
//! for every contender (nothing is dropped), so the figures compare CPU and write paths,
//! not cold reads.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::child::ChildServer;
use crate::server::TempDir;

/// How big and how often.
#[derive(Args, Clone, Copy, Debug)]
pub struct FilesOptions {
    /// Size of the file, in MiB.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=8192))]
    pub size_mib: u64,
    /// Runs; medians are taken across them.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub runs: u32,
}

/// One run's timings.
struct RunTimes {
    cp: Duration,
    cp_sync: Duration,
    upload: Duration,
    download: Duration,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.is_empty() {
        0.0
    } else if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// Writes `size` bytes that do not compress or repeat per MiB.
fn make_source(path: &std::path::Path, size: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..size.div_ceil(1 << 20) {
        for b in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
        }
        file.write_all(&block)?;
    }
    file.flush()?;
    let f = file.into_inner()?;
    f.set_len(size)?;
    f.sync_all()?;
    Ok(())
}

async fn timed_command(program: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = tokio::process::Command::new(program)
        .args(args)
        .status()
        .await
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("{program} failed: {status}");
    }
    Ok(started.elapsed())
}

/// Runs the benchmark and returns the Markdown report.
pub async fn run(options: FilesOptions) -> anyhow::Result<String> {
    let size = options.size_mib << 20;
    let server = ChildServer::concord(None).await?;
    let token = server
        .setup_token
        .clone()
        .context("a fresh server offers setup")?;
    let team = crate::team::setup(&server.base(), &token, 1).await?;
    let access = team.members[0].access.clone();
    let channel = team.channel_id.clone();
    let base = server.base();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;

    let dir = TempDir::new()?;
    let source = dir.path().join("source.bin");
    eprintln!("files: writing a {} MiB source file", options.size_mib);
    make_source(&source, size)?;
    let mut runs = Vec::new();
    for run in 1..=options.runs {
        let copy = dir.path().join("copy.bin");
        let cp = timed_command("cp", &[source.as_os_str(), copy.as_os_str()]).await?;
        std::fs::remove_file(&copy)?;
        let cp_sync = {
            let started = Instant::now();
            timed_command("cp", &[source.as_os_str(), copy.as_os_str()]).await?;
            timed_command("sync", &[copy.as_os_str()]).await?;
            started.elapsed()
        };
        std::fs::remove_file(&copy)?;

        let started = Instant::now();
        let created = client
            .post(format!("{base}/api/v1/channels/{channel}/uploads"))
            .bearer_auth(&access)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", size.to_string())
            .header("Upload-Metadata", "filename YmVuY2guYmlu")
            .send()
            .await?;
        if created.status() != 201 {
            bail!("creating the upload answered {}", created.status());
        }
        let location = created
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .context("no Location")?
            .to_owned();
        let file = tokio::fs::File::open(&source).await?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            256 * 1024,
        ));
        let patched = client
            .patch(format!("{base}{location}"))
            .bearer_auth(&access)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", "0")
            .header("Content-Type", "application/offset+octet-stream")
            .header("Content-Length", size.to_string())
            .body(body)
            .send()
            .await?;
        if patched.status() != 204 {
            bail!("the upload answered {}", patched.status());
        }
        let upload = started.elapsed();

        let id = location.rsplit('/').next().context("upload id")?.to_owned();
        let started = Instant::now();
        let response = client
            .get(format!("{base}/api/v1/files/{id}/content"))
            .bearer_auth(&access)
            .send()
            .await?;
        if response.status() != 200 {
            bail!("the download answered {}", response.status());
        }
        let mut out = tokio::fs::File::create(&copy).await?;
        let mut stream = response.bytes_stream();
        let mut received = 0u64;
        while let Some(piece) = stream.next().await {
            let piece = piece?;
            received += piece.len() as u64;
            out.write_all(&piece).await?;
        }
        out.flush().await?;
        let download = started.elapsed();
        if received != size {
            bail!("downloaded {received} bytes of {size}");
        }
        drop(out);
        std::fs::remove_file(&copy)?;
        let deleted = client
            .delete(format!("{base}/api/v1/files/{id}"))
            .bearer_auth(&access)
            .send()
            .await?;
        if deleted.status() != 204 {
            bail!("deleting answered {}", deleted.status());
        }
        let mib = |d: Duration| options.size_mib as f64 / d.as_secs_f64();
        eprintln!(
            "files run {run}: cp {:.0} MiB/s, cp+sync {:.0} MiB/s, upload {:.0} MiB/s, download {:.0} MiB/s",
            mib(cp),
            mib(cp_sync),
            mib(upload),
            mib(download)
        );
        runs.push(RunTimes {
            cp,
            cp_sync,
            upload,
            download,
        });
    }
    let peak_note = server.rss_kib().map(|k| k / 1024).unwrap_or(0);
    server.stop().await?;

    let mib = |d: &Duration| options.size_mib as f64 / d.as_secs_f64();
    let series =
        |f: fn(&RunTimes) -> &Duration| -> Vec<f64> { runs.iter().map(|r| mib(f(r))).collect() };
    let cp = series(|r| &r.cp);
    let cp_sync = series(|r| &r.cp_sync);
    let upload = series(|r| &r.upload);
    let download = series(|r| &r.download);
    let rows: [(&str, &Vec<f64>); 4] = [
        ("`cp` of the file (baseline)", &cp),
        ("`cp` then `sync` of the copy", &cp_sync),
        (
            "upload: tus `PATCH` of the whole file (chunked, encrypted, synced)",
            &upload,
        ),
        (
            "download: `GET /content` written to a file (verified, decrypted)",
            &download,
        ),
    ];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "`concord-bench files`: {} runs, one {} MiB file, {} cores; server RSS after the runs {} MiB.\n",
        options.runs,
        options.size_mib,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        peak_note
    );
    let _ = writeln!(out, "| Measured | MiB/s (median) | Range over runs | Ratio to `cp` (median of per-run ratios) |");
    let _ = writeln!(out, "|---|--:|--:|--:|");
    for (index, (label, values)) in rows.iter().enumerate() {
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(0.0, f64::max);
        let ratio = if index == 0 {
            "1 (baseline)".to_owned()
        } else {
            let ratios = values.iter().zip(&cp).map(|(v, b)| v / b).collect();
            format!("{:.2}", median(ratios))
        };
        let _ = writeln!(
            out,
            "| {label} | {:.0} | {low:.0}–{high:.0} | {ratio} |",
            median(values.to_vec())
        );
    }
    Ok(out)
}
