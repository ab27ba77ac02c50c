//! One workspace's index: its schema, the encrypted folder it lives in, updates and queries.
//!
//! Every entry has a `kind` (`message`, `document` or `file`), an `id`, and a `scope`
//! (`c:<channel>` for messages and for files shared in a channel, `d:<document>` for
//! documents) that queries filter on with the set of scopes the searcher may read now, so
//! permissions are decided at query time and never stored. All calls block (tantivy is
//! synchronous); callers run them on `spawn_blocking`.
//!
//! Text goes into `title` and `body` (words and CJK bigrams, see `analyzer.rs`) and, for
//! queries of a single CJK character, which no bigram can answer, into `cjk` (each CJK
//! character alone, without positions).
//!
//! The schema is part of the index: an index written with another schema (an older version)
//! is discarded at open and rebuilt, like a missing one.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, EmptyQuery, Occur, PhraseQuery, Query, RangeQuery,
    TermQuery, TermSetQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED,
    STRING,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, IndexSettings, Order, ReloadPolicy, TantivyDocument, Term};

use super::analyzer::{analyzer, is_single_cjk, terms, unigram_analyzer, ANALYZER, UNIGRAMS};
use super::encrypted_dir::{ChunkCache, EncryptedDirectory, IndexKeys};
use super::query::ParsedQuery;
use super::writer::LazyWriter;
use super::SearchError;

/// The flags a message can carry.
const FLAGS: &[&str] = &["link", "file", "reaction", "pin", "thread"];
/// The commit payload of a complete index.
pub const READY: &str = "ready";

#[derive(Clone, Copy)]
struct Fields {
    kind: Field,
    id: Field,
    scope: Field,
    channel: Field,
    author: Field,
    thread: Field,
    flags: Field,
    time: Field,
    seq: Field,
    title: Field,
    body: Field,
    cjk: Field,
    content_type: Field,
    size: Field,
    message: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_stored().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        kind: b.add_text_field("kind", STRING | STORED),
        id: b.add_text_field("id", STRING | STORED),
        scope: b.add_text_field("scope", STRING),
        channel: b.add_text_field("channel", STRING | STORED),
        author: b.add_text_field("author", STRING | STORED),
        thread: b.add_text_field("thread", STRING | STORED),
        flags: b.add_text_field("flags", STRING | STORED),
        time: b.add_i64_field("time", INDEXED | FAST | STORED),
        seq: b.add_i64_field("seq", STORED),
        title: b.add_text_field("title", text.clone()),
        body: b.add_text_field("body", text),
        cjk: b.add_text_field(
            "cjk",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(UNIGRAMS)
                    .set_index_option(IndexRecordOption::WithFreqs),
            ),
        ),
        content_type: b.add_text_field("content_type", STRING | STORED),
        size: b.add_i64_field("size", STORED),
        message: b.add_text_field("message", STRING | STORED),
    };
    (b.build(), fields)
}

/// A message as indexed.
#[derive(Clone, Debug)]
pub struct MessageEntry {
    /// Message id.
    pub id: String,
    /// Channel id.
    pub channel_id: String,
    /// Author id.
    pub author_id: String,
    /// Thread root, for replies.
    pub thread_root_id: Option<String>,
    /// Posted at, in milliseconds since the epoch.
    pub created_at_ms: i64,
    /// Position in the channel.
    pub seq: i64,
    /// The text.
    pub text: String,
    /// `link`, `file`, `reaction`, `pin`, `thread`.
    pub flags: Vec<&'static str>,
}

/// A document as indexed: its title and plain text.
#[derive(Clone, Debug)]
pub struct DocumentEntry {
    /// Document id.
    pub id: String,
    /// Creator.
    pub created_by: String,
    /// Last change, in milliseconds since the epoch.
    pub updated_at_ms: i64,
    /// Title.
    pub title: String,
    /// Plain text of the content.
    pub text: String,
}

/// A file as indexed: its name and, for text files, the start of its contents.
#[derive(Clone, Debug)]
pub struct FileEntry {
    /// File id.
    pub id: String,
    /// The channel it is shared in.
    pub channel_id: String,
    /// Who shared it.
    pub uploader_id: String,
    /// The message it was posted with.
    pub message_id: Option<String>,
    /// When it was shared, in milliseconds since the epoch.
    pub shared_at_ms: i64,
    /// Its name.
    pub name: String,
    /// Content type detected from its bytes.
    pub content_type: String,
    /// Length in bytes.
    pub size: i64,
    /// The start of its text (empty for other kinds of files).
    pub text: String,
}

/// Filters a query applies besides its text.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// Scopes the searcher may read (`c:<channel>`, `d:<document>`); empty finds nothing.
    pub scopes: Vec<String>,
    /// `in:` channels, if any.
    pub channels: Vec<String>,
    /// `from:` authors, if any.
    pub authors: Vec<String>,
    /// Authors whose entries are never found (people whose processing is restricted, GDPR
    /// Art. 18): whatever the index still holds of theirs stays out of every result.
    pub excluded_authors: Vec<String>,
}

/// One result.
#[derive(Clone, Debug)]
pub struct Hit {
    /// `message`, `document` or `file`.
    pub kind: String,
    /// Title (documents) or name (files).
    pub title: String,
    /// Its id.
    pub id: String,
    /// Channel (messages).
    pub channel_id: String,
    /// Author.
    pub author_id: String,
    /// Thread root (replies).
    pub thread_root_id: Option<String>,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    /// Position in the channel.
    pub seq: i64,
    /// HTML with matches in `<b>`, everything else escaped.
    pub snippet_html: String,
    /// Content type (files).
    pub content_type: Option<String>,
    /// Length in bytes (files).
    pub size: Option<i64>,
    /// The message a file was posted with (files).
    pub message_id: Option<String>,
}

/// A page of results and the number of all matches.
pub struct Hits {
    /// The page.
    pub hits: Vec<Hit>,
    /// All matches the searcher may see.
    pub total: usize,
}

/// An open workspace index.
pub struct WorkspaceIndex {
    index: Index,
    /// Open only while the index changes (see `writer.rs`).
    writer: LazyWriter,
    reader: IndexReader,
    fields: Fields,
    payload: Mutex<String>,
    /// Thread roots to mark once the commit that adds them is visible.
    unmarked_roots: Mutex<Vec<String>>,
    /// Commits made since it was opened.
    commits: AtomicU64,
}

fn internal(e: impl std::fmt::Display) -> SearchError {
    SearchError::Index(e.to_string())
}

impl WorkspaceIndex {
    /// Opens the index in `folder` (creating an empty one, or a new one in place of an index
    /// written with another schema); its payload says whether it is complete. Decrypted
    /// chunks of its files are kept in `cache`.
    pub fn open(
        folder: &Path,
        keys: IndexKeys,
        cache: ChunkCache,
    ) -> Result<WorkspaceIndex, SearchError> {
        let dir =
            EncryptedDirectory::open(folder, keys.clone(), cache.clone()).map_err(internal)?;
        if let Some(index) = Self::open_in(Box::new(dir))? {
            return Ok(index);
        }
        discard(folder)?;
        let dir = EncryptedDirectory::open(folder, keys, cache).map_err(internal)?;
        Self::open_in(Box::new(dir))?.ok_or_else(|| internal("new index has another schema"))
    }

    /// Opens an unencrypted index in `folder`: only for the benchmark's baseline.
    #[doc(hidden)]
    pub fn open_unencrypted(folder: &Path) -> Result<WorkspaceIndex, SearchError> {
        let plain = |folder: &Path| {
            std::fs::create_dir_all(folder).map_err(internal)?;
            tantivy::directory::MmapDirectory::open(folder).map_err(internal)
        };
        if let Some(index) = Self::open_in(Box::new(plain(folder)?))? {
            return Ok(index);
        }
        discard(folder)?;
        Self::open_in(Box::new(plain(folder)?))?
            .ok_or_else(|| internal("new index has another schema"))
    }

    /// The index in `dir`, or `None` if it was written with another schema.
    fn open_in(dir: Box<dyn tantivy::Directory>) -> Result<Option<WorkspaceIndex>, SearchError> {
        let (schema, fields) = schema();
        let mut index = if Index::exists(&*dir).map_err(internal)? {
            let index = Index::open(dir).map_err(internal)?;
            if index.schema() != schema {
                return Ok(None);
            }
            index
        } else {
            Index::create(dir, schema, settings()).map_err(internal)?
        };
        // Also for an index created before this setting: it applies to the segments written
        // from now on.
        index.settings_mut().docstore_compress_dedicated_thread = false;
        index.tokenizers().register(ANALYZER, analyzer());
        index.tokenizers().register(UNIGRAMS, unigram_analyzer());
        let payload = index
            .load_metas()
            .map_err(internal)?
            .payload
            .unwrap_or_default();
        let writer = LazyWriter::new(index.clone());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(internal)?;
        Ok(Some(WorkspaceIndex {
            index,
            writer,
            reader,
            fields,
            payload: Mutex::new(payload),
            unmarked_roots: Mutex::new(Vec::new()),
            commits: AtomicU64::new(0),
        }))
    }

    /// The last committed payload: [`READY`], `rebuild:<last message id>`, or empty (new).
    pub fn payload(&self) -> String {
        self.payload.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Sets the payload the next commit records.
    pub fn set_payload(&self, payload: &str) {
        if let Ok(mut p) = self.payload.lock() {
            *p = payload.to_owned();
        }
        self.touch();
    }

    fn touch(&self) {
        self.writer.touch();
    }

    /// Replaces the entry `id` with `doc`.
    fn replace(&self, id: &str, doc: TantivyDocument) -> Result<(), SearchError> {
        let term = Term::from_field_text(self.fields.id, id);
        self.writer.change(|writer| {
            writer.delete_term(term);
            writer.add_document(doc).map_err(internal)?;
            Ok(())
        })
    }

    /// Closes the index's writer if nothing awaits a commit and it has not been used for
    /// `idle`; the next change opens it again. Whether it closed it.
    pub fn close_writer_if_idle(&self, idle: std::time::Duration) -> Result<bool, SearchError> {
        self.writer.close_if_idle(idle)
    }

    /// Whether the index's writer is open.
    pub fn writer_is_open(&self) -> bool {
        self.writer.is_open()
    }

    /// Adds or replaces a message.
    pub fn upsert_message(&self, m: &MessageEntry) -> Result<(), SearchError> {
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.kind, "message");
        doc.add_text(f.id, &m.id);
        doc.add_text(f.scope, format!("c:{}", m.channel_id));
        doc.add_text(f.channel, &m.channel_id);
        doc.add_text(f.author, &m.author_id);
        if let Some(root) = &m.thread_root_id {
            doc.add_text(f.thread, root);
        }
        for flag in &m.flags {
            doc.add_text(f.flags, flag);
        }
        doc.add_i64(f.time, m.created_at_ms);
        doc.add_i64(f.seq, m.seq);
        doc.add_text(f.body, &m.text);
        doc.add_text(f.cjk, &m.text);
        self.replace(&m.id, doc)
    }

    /// Marks an indexed message as a thread root once it has a reply (a reply is posted
    /// without an event for its root). The mark is applied right after the next commit, from
    /// the committed entry, so an edit applied in the same batch is not overwritten.
    pub fn mark_thread_root(&self, root: &str) -> Result<(), SearchError> {
        if let Ok(mut roots) = self.unmarked_roots.lock() {
            roots.push(root.to_owned());
        }
        self.touch();
        Ok(())
    }

    /// Marks `root` if the committed index holds it; whether it did.
    fn mark_committed_root(&self, root: &str) -> Result<bool, SearchError> {
        let f = self.fields;
        let searcher = self.reader.searcher();
        let query = TermQuery::new(Term::from_field_text(f.id, root), IndexRecordOption::Basic);
        let top = searcher
            .search(&query, &TopDocs::with_limit(1))
            .map_err(internal)?;
        let Some((_, address)) = top.first() else {
            return Ok(false);
        };
        let doc: TantivyDocument = searcher.doc(*address).map_err(internal)?;
        let text = |field: Field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        if text(f.kind) != "message" {
            return Ok(true);
        }
        let mut flags: Vec<&'static str> = doc
            .get_all(f.flags)
            .filter_map(|v| v.as_str())
            .filter_map(|flag| FLAGS.iter().copied().find(|known| *known == flag))
            .collect();
        if flags.contains(&"thread") {
            return Ok(true);
        }
        flags.push("thread");
        let number = |field: Field| doc.get_first(field).and_then(|v| v.as_i64()).unwrap_or(0);
        let thread = text(f.thread);
        self.upsert_message(&MessageEntry {
            id: text(f.id),
            channel_id: text(f.channel),
            author_id: text(f.author),
            thread_root_id: (!thread.is_empty()).then_some(thread),
            created_at_ms: number(f.time),
            seq: number(f.seq),
            text: text(f.body),
            flags,
        })?;
        Ok(true)
    }

    /// Adds or replaces a document.
    pub fn upsert_document(&self, d: &DocumentEntry) -> Result<(), SearchError> {
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.kind, "document");
        doc.add_text(f.id, &d.id);
        doc.add_text(f.scope, format!("d:{}", d.id));
        doc.add_text(f.author, &d.created_by);
        doc.add_i64(f.time, d.updated_at_ms);
        doc.add_i64(f.seq, 0);
        doc.add_text(f.title, &d.title);
        doc.add_text(f.body, &d.text);
        doc.add_text(f.cjk, &d.title);
        doc.add_text(f.cjk, &d.text);
        self.replace(&d.id, doc)
    }

    /// Adds or replaces a file shared in a channel (its scope is the channel's: whoever may
    /// read the channel may download the file).
    pub fn upsert_file(&self, file: &FileEntry) -> Result<(), SearchError> {
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.kind, "file");
        doc.add_text(f.id, &file.id);
        doc.add_text(f.scope, format!("c:{}", file.channel_id));
        doc.add_text(f.channel, &file.channel_id);
        doc.add_text(f.author, &file.uploader_id);
        doc.add_text(f.flags, "file");
        doc.add_i64(f.time, file.shared_at_ms);
        doc.add_i64(f.seq, 0);
        doc.add_text(f.title, &file.name);
        doc.add_text(f.body, &file.text);
        doc.add_text(f.cjk, &file.name);
        doc.add_text(f.cjk, &file.text);
        doc.add_text(f.content_type, &file.content_type);
        doc.add_i64(f.size, file.size);
        if let Some(message) = &file.message_id {
            doc.add_text(f.message, message);
        }
        self.replace(&file.id, doc)
    }

    /// Removes an entry by id (a deleted message or document).
    pub fn delete(&self, id: &str) -> Result<(), SearchError> {
        let term = Term::from_field_text(self.fields.id, id);
        self.writer.change(|writer| {
            writer.delete_term(term);
            Ok(())
        })
    }

    /// Removes every entry of a scope (`c:<channel>`: a deleted channel, a retention sweep).
    pub fn delete_scope(&self, scope: &str) -> Result<(), SearchError> {
        let term = Term::from_field_text(self.fields.scope, scope);
        self.writer.change(|writer| {
            writer.delete_term(term);
            Ok(())
        })
    }

    /// Removes every entry by one author: their messages, the files they shared and the
    /// documents they created (the start of a restriction of processing).
    pub fn delete_author(&self, author: &str) -> Result<(), SearchError> {
        let term = Term::from_field_text(self.fields.author, author);
        self.writer.change(|writer| {
            writer.delete_term(term);
            Ok(())
        })
    }

    /// Removes everything (the start of a full rebuild).
    pub fn clear(&self) -> Result<(), SearchError> {
        self.writer.change(|writer| {
            writer.delete_all_documents().map_err(internal)?;
            Ok(())
        })
    }

    /// Commits pending changes (if any) and makes them visible to queries.
    pub fn commit(&self) -> Result<(), SearchError> {
        self.commit_pending()?;
        let roots = self
            .unmarked_roots
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        if roots.is_empty() {
            return Ok(());
        }
        for root in roots {
            // Absent after the commit: the root was deleted.
            self.mark_committed_root(&root)?;
        }
        self.commit_pending()
    }

    fn commit_pending(&self) -> Result<(), SearchError> {
        let committed = self.writer.commit(|writer| {
            let payload = self.payload();
            let mut prepared = writer.prepare_commit().map_err(internal)?;
            prepared.set_payload(&payload);
            prepared.commit().map_err(internal)?;
            Ok(())
        })?;
        if !committed {
            return Ok(());
        }
        self.commits.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("concord_search_commits_total").increment(1);
        self.reader.reload().map_err(internal)
    }

    /// Commits, then rewrites every segment without the entries deleted from it and removes
    /// the files no longer used, so deleted text leaves the disk rather than only the results
    /// (an erasure's last step; tantivy otherwise drops them at its next merge).
    pub fn purge_deleted(&self) -> Result<(), SearchError> {
        self.commit()?;
        let segments = self.index.searchable_segment_ids().map_err(internal)?;
        if !segments.is_empty() {
            let merge = self.writer.change(|writer| Ok(writer.merge(&segments)))?;
            merge.wait().map_err(internal)?;
        }
        let collect = self
            .writer
            .change(|writer| Ok(writer.garbage_collect_files()))?;
        collect.wait().map_err(internal)?;
        self.commit()
    }

    /// Commits made since the index was opened (each writes a segment).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Matches `text` in the body or the title. Several tokens (a quoted phrase, or one typed
    /// word that analyzes to several: CJK bigrams, "e-mail") must be adjacent and in order.
    fn text_query(&self, text: &str) -> Box<dyn Query> {
        let f = self.fields;
        let words = terms(text);
        if words.is_empty() {
            return Box::new(EmptyQuery);
        }
        let per_field = |field: Field| -> Box<dyn Query> {
            let ts: Vec<Term> = words
                .iter()
                .map(|w| Term::from_field_text(field, w))
                .collect();
            if ts.len() == 1 {
                Box::new(TermQuery::new(ts[0].clone(), IndexRecordOption::WithFreqs))
            } else {
                Box::new(PhraseQuery::new(ts))
            }
        };
        let mut fields = vec![
            (Occur::Should, per_field(f.body)),
            (Occur::Should, per_field(f.title)),
        ];
        if words.len() == 1 && is_single_cjk(&words[0]) {
            // Inside a run of CJK text the character exists only within bigrams.
            fields.push((Occur::Should, per_field(f.cjk)));
        }
        Box::new(BooleanQuery::new(fields))
    }

    fn any_of(&self, field: Field, values: &[String]) -> Box<dyn Query> {
        Box::new(ConstScoreQuery::new(
            Box::new(TermSetQuery::new(
                values.iter().map(|v| Term::from_field_text(field, v)),
            )),
            0.0,
        ))
    }

    fn build(&self, q: &ParsedQuery, filters: &Filters) -> Box<dyn Query> {
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for t in &q.terms {
            let occur = if t.excluded {
                Occur::MustNot
            } else {
                Occur::Must
            };
            clauses.push((occur, self.text_query(&t.text)));
        }
        if !q.has_text() {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        clauses.push((Occur::Must, self.any_of(f.scope, &filters.scopes)));
        if !filters.channels.is_empty() {
            clauses.push((Occur::Must, self.any_of(f.channel, &filters.channels)));
        }
        if !filters.authors.is_empty() {
            clauses.push((Occur::Must, self.any_of(f.author, &filters.authors)));
        }
        if !filters.excluded_authors.is_empty() {
            clauses.push((
                Occur::MustNot,
                self.any_of(f.author, &filters.excluded_authors),
            ));
        }
        for has in &q.has {
            clauses.push((Occur::Must, self.any_of(f.flags, &[has.flag().to_owned()])));
        }
        if q.is_thread {
            clauses.push((Occur::Must, self.any_of(f.flags, &["thread".to_owned()])));
        }
        if q.before.is_some() || q.after.is_some() {
            use std::ops::Bound;
            let lower = q.after.map_or(Bound::Unbounded, |t| {
                Bound::Included(Term::from_field_i64(f.time, t.timestamp_millis()))
            });
            let upper = q.before.map_or(Bound::Unbounded, |t| {
                Bound::Excluded(Term::from_field_i64(f.time, t.timestamp_millis()))
            });
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
        }
        Box::new(BooleanQuery::new(clauses))
    }

    /// Runs a query: one page from `offset`, newest first or by relevance, and the total.
    pub fn search(
        &self,
        q: &ParsedQuery,
        filters: &Filters,
        by_date: bool,
        offset: usize,
        limit: usize,
    ) -> Result<Hits, SearchError> {
        if filters.scopes.is_empty() {
            return Ok(Hits {
                hits: Vec::new(),
                total: 0,
            });
        }
        let f = self.fields;
        let query = self.build(q, filters);
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(limit.max(1)).and_offset(offset);
        let (addresses, total) = if by_date {
            let (docs, total) = searcher
                .search(
                    &query,
                    &(top.order_by_fast_field::<i64>("time", Order::Desc), Count),
                )
                .map_err(internal)?;
            (docs.into_iter().map(|(_, a)| a).collect::<Vec<_>>(), total)
        } else {
            let (docs, total) = searcher.search(&query, &(top, Count)).map_err(internal)?;
            (docs.into_iter().map(|(_, a)| a).collect::<Vec<_>>(), total)
        };
        let generator = |field: Field| -> Result<SnippetGenerator, SearchError> {
            let mut g = SnippetGenerator::create(&searcher, &*query, field).map_err(internal)?;
            g.set_max_num_chars(240);
            Ok(g)
        };
        let snippets = generator(f.body)?;
        // Built when first needed: single CJK characters, matches in a file's name.
        let mut unigram_snippets: Option<SnippetGenerator> = None;
        let mut title_snippets: Option<SnippetGenerator> = None;
        let mut hits = Vec::with_capacity(addresses.len());
        for address in addresses {
            let doc: TantivyDocument = searcher.doc(address).map_err(internal)?;
            let text = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let number = |field: Field| doc.get_first(field).and_then(|v| v.as_i64()).unwrap_or(0);
            let kind = text(f.kind);
            let mut snippet = snippets.snippet_from_doc(&doc);
            if snippet.fragment().is_empty() {
                if unigram_snippets.is_none() {
                    unigram_snippets = Some(generator(f.cjk)?);
                }
                if let Some(g) = &unigram_snippets {
                    snippet = g.snippet(&text(f.body));
                }
            }
            if snippet.fragment().is_empty() && kind == "file" {
                if title_snippets.is_none() {
                    title_snippets = Some(generator(f.title)?);
                }
                if let Some(g) = &title_snippets {
                    snippet = g.snippet(&text(f.title));
                }
            }
            let snippet_html = if snippet.fragment().is_empty() {
                let body = text(f.body);
                let start: String = body.chars().take(240).collect();
                html_escape(&start)
            } else {
                snippet.to_html()
            };
            let thread = text(f.thread);
            let is_file = kind == "file";
            let message = text(f.message);
            hits.push(Hit {
                content_type: is_file.then(|| text(f.content_type)),
                size: is_file.then(|| number(f.size)),
                message_id: (!message.is_empty()).then_some(message),
                kind,
                title: text(f.title),
                id: text(f.id),
                channel_id: text(f.channel),
                author_id: text(f.author),
                thread_root_id: (!thread.is_empty()).then_some(thread),
                time_ms: number(f.time),
                seq: number(f.seq),
                snippet_html,
            });
        }
        Ok(Hits { hits, total })
    }

    /// Entries in the index (for status).
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The underlying tantivy index (for the benchmark's comparison with a plain directory).
    pub fn tantivy(&self) -> &Index {
        &self.index
    }
}

/// The settings of every index: documents' stored fields are compressed on the thread that
/// writes the segment, not on a thread started for each segment (entries are small, and a
/// segment is written per commit).
fn settings() -> IndexSettings {
    IndexSettings {
        docstore_compress_dedicated_thread: false,
        ..IndexSettings::default()
    }
}

/// Removes an index written with another schema (derived data: the empty index that replaces
/// it has no payload, so the service rebuilds it).
fn discard(folder: &Path) -> Result<(), SearchError> {
    tracing::info!(folder = %folder.display(), "search: the index has an older schema; rebuilding it");
    std::fs::remove_dir_all(folder).map_err(internal)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn message(id: &str, text: &str) -> MessageEntry {
        MessageEntry {
            id: id.into(),
            channel_id: "c1".into(),
            author_id: "u1".into(),
            thread_root_id: None,
            created_at_ms: 0,
            seq: 0,
            text: text.into(),
            flags: Vec::new(),
        }
    }

    fn found(index: &WorkspaceIndex, words: &str) -> Vec<String> {
        let filters = Filters {
            scopes: vec!["c:c1".into()],
            channels: Vec::new(),
            authors: Vec::new(),
            excluded_authors: Vec::new(),
        };
        let q = crate::search::query::parse(words).unwrap();
        let hits = index.search(&q, &filters, false, 0, 10).unwrap();
        hits.hits.into_iter().map(|h| h.id).collect()
    }

    #[test]
    fn the_writer_opens_with_the_first_change_and_closes_only_with_nothing_to_commit() {
        let dir = tempfile::tempdir().unwrap();
        let index = WorkspaceIndex::open_unencrypted(&dir.path().join("ws")).unwrap();
        assert!(!index.writer_is_open(), "opening an index opens no writer");

        index
            .upsert_message(&message("m1", "deploying the kraken"))
            .unwrap();
        assert!(index.writer_is_open());
        assert!(
            !index.close_writer_if_idle(Duration::ZERO).unwrap(),
            "a change awaiting its commit keeps the writer open"
        );
        index.commit().unwrap();
        assert!(index.close_writer_if_idle(Duration::ZERO).unwrap());
        assert!(!index.writer_is_open());
        assert_eq!(found(&index, "kraken"), vec!["m1".to_string()]);

        // Changes after the close reopen the writer; both kinds of change commit.
        index
            .upsert_message(&message("m2", "another kraken"))
            .unwrap();
        index.delete("m1").unwrap();
        assert!(!index.close_writer_if_idle(Duration::ZERO).unwrap());
        index.commit().unwrap();
        assert_eq!(found(&index, "kraken"), vec!["m2".to_string()]);

        // A new payload alone is committed too, through a writer opened for it.
        assert!(index.close_writer_if_idle(Duration::ZERO).unwrap());
        index.set_payload(READY);
        assert!(!index.close_writer_if_idle(Duration::ZERO).unwrap());
        index.commit().unwrap();
        assert!(index.close_writer_if_idle(Duration::ZERO).unwrap());
        drop(index);
        let reopened = WorkspaceIndex::open_unencrypted(&dir.path().join("ws")).unwrap();
        assert_eq!(reopened.payload(), READY);
        assert_eq!(found(&reopened, "kraken"), vec!["m2".to_string()]);
    }

    #[test]
    fn a_recently_used_writer_stays_open() {
        let dir = tempfile::tempdir().unwrap();
        let index = WorkspaceIndex::open_unencrypted(&dir.path().join("ws")).unwrap();
        index.upsert_message(&message("m1", "hello")).unwrap();
        index.commit().unwrap();
        assert!(!index
            .close_writer_if_idle(Duration::from_secs(3600))
            .unwrap());
        assert!(index.writer_is_open());
    }

    #[test]
    fn an_index_with_another_schema_is_replaced_by_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("ws");
        {
            let mut b = Schema::builder();
            let body = b.add_text_field("body", STRING | STORED);
            let old = Index::create_in_dir(
                &{
                    std::fs::create_dir_all(&folder).unwrap();
                    folder.clone()
                },
                b.build(),
            )
            .unwrap();
            let mut writer: tantivy::IndexWriter =
                old.writer_with_num_threads(1, 15_000_000).unwrap();
            writer.add_document(tantivy::doc!(body => "old")).unwrap();
            let mut prepared = writer.prepare_commit().unwrap();
            prepared.set_payload(READY);
            prepared.commit().unwrap();
        }
        let index = WorkspaceIndex::open_unencrypted(&folder).unwrap();
        assert!(index.is_empty());
        assert_eq!(
            index.payload(),
            "",
            "an empty payload makes the service rebuild it"
        );
    }
}
