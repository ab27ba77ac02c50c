// Message text to safe HTML: Markdown through `marked`, raw HTML shown as text, the result
// sanitised by a DOMPurify instance of our own (a short allow-list; no images, no scripts, no
// event handlers, only http(s)/mailto links, opened in a new tab without an opener), then
// `@<user id>` mentions turned into name pills by DOM operations (text only).

import { Marked } from 'marked';
import createDOMPurify from 'dompurify';
import type { Person } from './types';

const purify = createDOMPurify(window);

const ALLOWED_TAGS = [
  'p', 'br', 'strong', 'em', 'del', 's', 'code', 'pre', 'blockquote', 'ul', 'ol', 'li', 'a',
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'span',
];
const ALLOWED_ATTR = ['href', 'title', 'start', 'align'];
const SAFE_URL = /^(https?:|mailto:)/i;

purify.addHook('afterSanitizeAttributes', (node) => {
  if (node.nodeName === 'A') {
    const href = node.getAttribute('href') ?? '';
    if (!SAFE_URL.test(href.trim())) {
      node.removeAttribute('href');
    } else {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer nofollow');
    }
  }
});

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const md = new Marked({ gfm: true, breaks: true, async: false });
md.use({
  renderer: {
    // Raw HTML in a message is shown as the text it is, never interpreted.
    html({ text }) {
      return escapeHtml(text);
    },
    // Remote images would leak the reader's address: show them as links.
    image({ href, text }) {
      const label = escapeHtml(text || href);
      return SAFE_URL.test(href) ? `<a href="${escapeHtml(href)}">${label}</a>` : label;
    },
  },
});

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
// As the server reads them: an `@` right after a letter or digit of any script, `.` or `_` is no mention.
const MENTION = new RegExp(`(^|[^\\p{L}\\p{N}_.])@(${UUID}|channel|everyone|here)\\b`, 'giu');

const cache = new Map<string, string>();
const CACHE_MAX = 2000;

/** Safe HTML for a message's text (memoised; `peopleVersion` invalidates names). */
export function renderMessage(text: string, people: Map<string, Person>, me: string, peopleVersion = 0): string {
  const key = `${peopleVersion}\u0000${me}\u0000${text}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const raw = md.parse(text) as string;
  const frag = purify.sanitize(raw, {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    ALLOW_DATA_ATTR: false,
    RETURN_DOM_FRAGMENT: true,
  });
  decorateMentions(frag, people, me);
  const box = document.createElement('div');
  box.appendChild(frag);
  const html = box.innerHTML;
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.set(key, html);
  return html;
}

function decorateMentions(root: DocumentFragment, people: Map<string, Person>, me: string) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const texts: Text[] = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const t = n as Text;
    if (t.parentElement?.closest('code, pre, a')) continue;
    if (t.data.includes('@')) texts.push(t);
  }
  for (const t of texts) {
    const data = t.data;
    MENTION.lastIndex = 0;
    let m: RegExpExecArray | null;
    let last = 0;
    const out = document.createDocumentFragment();
    let found = false;
    while ((m = MENTION.exec(data))) {
      found = true;
      const start = m.index + m[1].length;
      out.appendChild(document.createTextNode(data.slice(last, start)));
      const handle = m[2].toLowerCase();
      const span = document.createElement('span');
      span.className = 'mention';
      if (handle === 'channel' || handle === 'everyone' || handle === 'here') {
        span.textContent = `@${handle}`;
        span.classList.add('mention-me');
      } else {
        const person = people.get(handle);
        span.textContent = `@${person?.display_name ?? 'unknown'}`;
        if (handle === me) span.classList.add('mention-me');
      }
      out.appendChild(span);
      last = start + 1 + m[2].length;
    }
    if (!found) continue;
    out.appendChild(document.createTextNode(data.slice(last)));
    t.replaceWith(out);
  }
}

/** The text with `@<user id>` written as `@Name` (for editing and previews). */
export function mentionsToNames(text: string, people: Map<string, Person>): string {
  return text.replace(new RegExp(`(^|[^\\w.])@(${UUID})`, 'gi'), (all, pre: string, id: string) => {
    const p = people.get(id.toLowerCase());
    return p ? `${pre}@${p.display_name}` : all;
  });
}

/** The text with each `@Name` of the given people written as `@<user id>` (what the server reads). */
export function namesToMentions(text: string, people: Iterable<Person>): string {
  const sorted = [...people].filter((p) => p.display_name).sort((a, b) => b.display_name.length - a.display_name.length);
  let out = text;
  for (const p of sorted) {
    const escaped = p.display_name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    out = out.replace(new RegExp(`(^|[^\\w.])@${escaped}(?![\\w])`, 'g'), `$1@${p.user_id}`);
  }
  return out;
}

/** Plain text of a message for previews and labels (no markup). */
export function plainText(text: string, people: Map<string, Person>): string {
  return mentionsToNames(text, people).replace(/[*_`~>#]/g, '').replace(/\s+/g, ' ').trim();
}
