// Search results for the workspace: messages, documents and files the user may see, with the
// server's highlighted passages rendered as text nodes and <mark> elements (never as HTML).
import type { ComponentChildren } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, type Me, type Schemas } from '../api';
import { download, errorText, fullTime } from '../docs/model';
import './search.css';

export interface SearchViewProps {
  workspaceId: string;
  query: string;
  me: Me;
  navigate: (path: string) => void;
}

/** A hit: `kind` is `message`, `document` or `file`. */
type Result = Schemas['SearchResult'];
type Page = Schemas['SearchPage'];

type Sort = 'relevance' | 'date';

const GROUPS: { kind: string; title: string }[] = [
  { kind: 'message', title: 'Messages' },
  { kind: 'document', title: 'Documents' },
  { kind: 'file', title: 'Files' },
];

function queryFromLocation(fallback: string): string {
  const q = new URLSearchParams(location.search).get('q');
  return q ?? fallback;
}

export default function SearchView({ workspaceId, query, navigate }: SearchViewProps) {
  const [q, setQ] = useState(query);
  const [draft, setDraft] = useState(query);
  const [sort, setSort] = useState<Sort>(() =>
    new URLSearchParams(location.search).get('sort') === 'date' ? 'date' : 'relevance',
  );
  const [results, setResults] = useState<Result[]>([]);
  const [total, setTotal] = useState(0);
  const [cursor, setCursor] = useState<string | null>(null);
  const [index, setIndex] = useState<Page['index'] | null>(null);
  const [state, setState] = useState<'idle' | 'loading' | 'ready' | 'more'>('idle');
  const [error, setError] = useState('');
  const [names, setNames] = useState<Map<string, string>>(new Map());
  const [fileError, setFileError] = useState('');
  const request = useRef(0);
  const heading = useRef<HTMLHeadingElement>(null);

  // The query follows the URL (the header's search box navigates here).
  useEffect(() => {
    setQ(query);
    setDraft(query);
  }, [query]);
  useEffect(() => {
    const on = () => {
      const next = queryFromLocation(q);
      setQ(next);
      setDraft(next);
    };
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, [q]);

  useEffect(() => {
    document.title = q ? `“${q}” · Search · Concord` : 'Search · Concord';
  }, [q]);

  useEffect(() => {
    let live = true;
    api('get', '/api/v1/workspaces/{workspace_id}/members', { params: { path: { workspace_id: workspaceId } } })
      .then((ms) => live && setNames(new Map(ms.map((m) => [m.user_id, m.display_name]))))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [workspaceId]);

  const fetchPage = async (after: string | null) => {
    const id = ++request.current;
    setError('');
    setState(after ? 'more' : 'loading');
    if (!after) {
      setResults([]);
      setTotal(0);
      setCursor(null);
    }
    try {
      const page = await api('get', '/api/v1/workspaces/{workspace_id}/search', {
        params: {
          path: { workspace_id: workspaceId },
          query: { q, sort, limit: 20, ...(after ? { cursor: after } : {}) },
        },
      });
      if (id !== request.current) return;
      setResults((old) => (after ? [...old, ...page.results] : page.results));
      setTotal(page.total);
      setCursor(page.next_cursor ?? null);
      setIndex(page.index);
      setState('ready');
    } catch (e) {
      if (id !== request.current) return;
      // The server names the parameter at fault ("q: ..."); the person only typed the query.
      setError(errorText(e).replace(/^q: /, ''));
      setState('ready');
    }
  };

  useEffect(() => {
    if (!q.trim()) {
      request.current++;
      setResults([]);
      setTotal(0);
      setCursor(null);
      setError('');
      setState('idle');
      return;
    }
    fetchPage(null);
  }, [workspaceId, q, sort]);

  const groups = useMemo(() => {
    const by = new Map<string, Result[]>();
    for (const r of results) {
      const k = GROUPS.some((g) => g.kind === r.kind) ? r.kind : 'other';
      by.set(k, [...(by.get(k) ?? []), r]);
    }
    return by;
  }, [results]);

  const submit = (e: Event) => {
    e.preventDefault();
    const next = draft.trim();
    const params = new URLSearchParams({ q: next });
    if (sort === 'date') params.set('sort', 'date');
    navigate(`/w/${workspaceId}/search?${params}`);
    setQ(next);
  };

  const changeSort = (s: Sort) => {
    setSort(s);
    const params = new URLSearchParams({ q });
    if (s === 'date') params.set('sort', 'date');
    history.replaceState(history.state, '', `/w/${workspaceId}/search?${params}`);
  };

  const openFile = async (r: Result) => {
    setFileError('');
    try {
      await download(`/api/v1/files/${r.id}/content`, r.name ?? r.title ?? 'file');
    } catch (e) {
      setFileError(`Could not open the file: ${errorText(e)}`);
    }
  };

  const author = (id: string) => names.get(id) ?? 'Someone';

  return (
    <section
      class="sx-page"
      aria-labelledby="sx-title"
      onKeyDown={(e) => {
        // Up and down arrows move between results, as in a list.
        if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
        const target = e.target as HTMLElement;
        if (!target.classList.contains('sx-result')) return;
        const all = [...e.currentTarget.querySelectorAll<HTMLElement>('.sx-result')];
        const next = all[all.indexOf(target) + (e.key === 'ArrowDown' ? 1 : -1)];
        if (next) {
          e.preventDefault();
          next.focus();
        }
      }}
    >
      <h1 id="sx-title" ref={heading} tabIndex={-1}>
        Search
      </h1>
      <form class="sx-form" role="search" onSubmit={submit}>
        <label for="sx-input" class="sx-visually-hidden">
          Search messages and documents
        </label>
        <input
          id="sx-input"
          type="search"
          value={draft}
          placeholder='e.g. deploy in:#general -friday'
          autoComplete="off"
          spellcheck={false}
          aria-describedby="sx-syntax-summary"
          onInput={(e) => setDraft(e.currentTarget.value)}
        />
        <button type="submit" class="sx-btn sx-btn-primary">
          Search
        </button>
      </form>

      <details class="sx-syntax">
        <summary id="sx-syntax-summary">Search syntax</summary>
        <dl>
          <SyntaxRow term='"exact phrase"'>words in this order</SyntaxRow>
          <SyntaxRow term="-word">leave out results with the word</SyntaxRow>
          <SyntaxRow term="in:#channel">in a channel (in:@name for a conversation)</SyntaxRow>
          <SyntaxRow term="from:@name">written by someone</SyntaxRow>
          <SyntaxRow term="before:2026-01-31 after: on:">by date (YYYY-MM-DD)</SyntaxRow>
          <SyntaxRow term="has:link has:file has:reaction has:pin">with a link, a file, a reaction, or pinned</SyntaxRow>
          <SyntaxRow term="is:thread">in a thread</SyntaxRow>
        </dl>
      </details>

      {q.trim() && (
        <div class="sx-bar">
          <p class="sx-count" role="status" aria-live="polite">
            {state === 'loading'
              ? 'Searching…'
              : error
                ? ''
                : `${total.toLocaleString()} ${total === 1 ? 'result' : 'results'} for “${q}”`}
          </p>
          <label class="sx-sort">
            <span>Sort by</span>
            <select value={sort} onChange={(e) => changeSort(e.currentTarget.value as Sort)}>
              <option value="relevance">Best match</option>
              <option value="date">Newest first</option>
            </select>
          </label>
        </div>
      )}

      {index && index.state !== 'ready' && (
        <p class="sx-note" role="note">
          The search index is being rebuilt
          {index.total ? ` (${(index.indexed ?? 0).toLocaleString()} of ${index.total.toLocaleString()} messages)` : ''}; results
          may be incomplete for a while.
        </p>
      )}

      {error && (
        <div class="sx-error" role="alert">
          <strong>The search could not be run.</strong> {error}
        </div>
      )}
      {fileError && (
        <p class="sx-error" role="alert">
          {fileError}
        </p>
      )}

      {state === 'idle' && (
        <p class="sx-muted">Search messages and documents across the channels and documents you can see.</p>
      )}

      {state !== 'loading' && !error && q.trim() && results.length === 0 && state !== 'idle' && (
        <div class="sx-empty">
          <p>Nothing matches “{q}”.</p>
          <p class="sx-muted">Check the spelling, use fewer words, or remove a filter.</p>
        </div>
      )}

      {[...GROUPS, { kind: 'other', title: 'Other' }].map((g) => {
        const items = groups.get(g.kind);
        if (!items?.length) return null;
        return (
          <section key={g.kind} class="sx-group" aria-labelledby={`sx-group-${g.kind}`}>
            <h2 id={`sx-group-${g.kind}`}>
              {g.title} <span class="sx-group-count">{items.length}</span>
            </h2>
            <ul class="sx-results">
              {items.map((r) => (
                <li key={`${r.kind}:${r.id}`}>
                  <ResultItem
                    r={r}
                    query={q}
                    workspaceId={workspaceId}
                    author={author(r.author_id)}
                    navigate={navigate}
                    openFile={openFile}
                  />
                </li>
              ))}
            </ul>
          </section>
        );
      })}

      {cursor && !error && (
        <div class="sx-more">
          <button type="button" class="sx-btn" disabled={state === 'more'} onClick={() => fetchPage(cursor)}>
            {state === 'more' ? 'Loading…' : `Show more results (${results.length} of ${total})`}
          </button>
        </div>
      )}
    </section>
  );
}

function SyntaxRow({ term, children }: { term: string; children: ComponentChildren }) {
  return (
    <div class="sx-syntax-row">
      <dt>
        <code>{term}</code>
      </dt>
      <dd>{children}</dd>
    </div>
  );
}

function ResultItem(props: {
  r: Result;
  query: string;
  workspaceId: string;
  author: string;
  navigate: (p: string) => void;
  openFile: (r: Result) => void;
}) {
  const { r, workspaceId, author, navigate } = props;
  const when = (
    <time dateTime={r.created_at} title={fullTime(r.created_at)}>
      {shortTime(r.created_at)}
    </time>
  );
  const snippet = r.snippet_html ? <p class="sx-snippet">{highlighted(r.snippet_html)}</p> : null;

  if (r.kind === 'file') {
    return (
      <button type="button" class="sx-result sx-result-button" onClick={() => props.openFile(r)}>
        <span class="sx-result-head">
          <span class="sx-result-where">{r.name ?? r.title ?? 'File'}</span>
          <span class="sx-result-meta">
            {author} · {when}
          </span>
        </span>
        {snippet}
      </button>
    );
  }

  let href: string | null = null;
  let where: ComponentChildren = null;
  if (r.kind === 'message' && r.channel_id) {
    href = `/w/${workspaceId}/c/${r.channel_id}/m/${r.id}`;
    where = r.channel_name ? `#${r.channel_name}` : r.channel_kind === 'direct' ? 'Direct message' : 'Conversation';
  } else if (r.kind === 'document') {
    href = `/w/${workspaceId}/d/${r.id}`;
    where = markTerms(r.title ?? 'Untitled document', props.query);
  }

  const body = (
    <>
      <span class="sx-result-head">
        <span class="sx-result-where">
          {where}
          {r.thread_root_id && <span class="sx-thread"> · in a thread</span>}
        </span>
        <span class="sx-result-meta">
          {r.kind === 'document' ? `By ${author}` : author} · {when}
        </span>
      </span>
      {snippet}
    </>
  );
  if (!href) return <div class="sx-result">{body}</div>;
  const to = href;
  return (
    <a
      class="sx-result"
      href={to}
      data-kind={r.kind}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(to);
      }}
    >
      {body}
    </a>
  );
}

/** The query's plain words (no filters, no exclusions), for marking them in titles. */
function plainTerms(q: string): string[] {
  return (q.match(/"[^"]*"|\S+/g) ?? [])
    .filter((t) => !t.startsWith('-') && !/^[a-z]+:/i.test(t))
    .map((t) => t.replace(/^"|"$/g, '').trim())
    .filter((t) => t.length > 1);
}

/** `text` with the query's words in <mark> (built as nodes, never as HTML). */
function markTerms(text: string, q: string): ComponentChildren {
  const terms = plainTerms(q);
  if (terms.length === 0) return text;
  const re = new RegExp(`(${terms.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})`, 'gi');
  return text.split(re).map((part, i) => (i % 2 === 1 ? <mark key={i}>{part}</mark> : part));
}

const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const yearFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });

function shortTime(iso: string): string {
  const d = new Date(iso);
  if (isNaN(d.getTime())) return iso;
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return timeFormat.format(d);
  if (d.getFullYear() === now.getFullYear()) return dayFormat.format(d);
  return yearFormat.format(d);
}

/**
 * The server's snippet (matches in <b>, everything else escaped) as Preact nodes: parsed into an
 * inert document (no scripts run, nothing loads), then rebuilt from text nodes, with only <b>
 * kept (as <mark>). Any other markup is reduced to its text.
 */
export function highlighted(html: string): ComponentChildren[] {
  const doc = new DOMParser().parseFromString(`<body>${html}</body>`, 'text/html');
  const out: ComponentChildren[] = [];
  let key = 0;
  const walk = (node: Node, marked: boolean) => {
    node.childNodes.forEach((child) => {
      if (child.nodeType === Node.TEXT_NODE) {
        const text = child.textContent ?? '';
        if (!text) return;
        out.push(marked ? <mark key={key++}>{text}</mark> : text);
      } else if (child.nodeType === Node.ELEMENT_NODE) {
        const tag = (child as Element).tagName;
        if (tag === 'SCRIPT' || tag === 'STYLE') return;
        walk(child, marked || tag === 'B' || tag === 'MARK' || tag === 'EM' || tag === 'STRONG');
      }
    });
  };
  walk(doc.body, false);
  return out;
}
