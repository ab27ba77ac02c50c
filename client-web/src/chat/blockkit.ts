// Slack Block Kit, as bots post it: the JSON a message carries in `blocks` parsed into the
// subset this client shows (section, context, divider, header, image, actions, and the text of
// anything else), Slack's mrkdwn written as the Markdown `renderMessage` takes, and the call
// that reports a click on a button or a choice in a select back to the server.
//
// The blocks are the bot's JSON, unchecked by the server beyond being JSON: everything here is
// read defensively, and what cannot be understood is dropped or shown as its text.

import { api, type Schemas } from '../api';

/** A text object: mrkdwn (as Markdown for `renderMessage`) or plain text (shown as it is). */
export type Text = { kind: 'markdown'; markdown: string } | { kind: 'plain'; text: string };

/** One choice of a select. */
export interface SelectOption {
  label: string;
  value: string;
}

/** An interactive or decorative element of a section's accessory, an actions or a context block. */
export type Element =
  | {
      kind: 'button';
      actionId: string;
      label: string;
      value?: string;
      style?: 'primary' | 'danger';
      /** A link button (http(s) only): opens the page as well as reporting the click. */
      url?: string;
      accessibilityLabel?: string;
      confirm?: Confirm;
    }
  | {
      kind: 'static_select';
      actionId: string;
      placeholder: string;
      groups: { label?: string; options: SelectOption[] }[];
      initial?: string;
      confirm?: Confirm;
    }
  | { kind: 'image'; url: string; alt: string };

type ImageElement = Extract<Element, { kind: 'image' }>;

/** A confirmation Slack asks for before an action is sent. */
export interface Confirm {
  title: string;
  text: Text;
  confirm: string;
  deny: string;
  style?: 'primary' | 'danger';
}

/** A block this client shows; rich text and unknown blocks are reduced to their text. */
export type Block =
  | { type: 'section'; blockId: string; text?: Text; fields: Text[]; accessory?: Element }
  | { type: 'context'; elements: (Text | ImageElement)[] }
  | { type: 'divider' }
  | { type: 'header'; text: string }
  | { type: 'image'; url: string; alt: string; title?: string }
  | { type: 'actions'; blockId: string; elements: Element[] }
  | { type: 'text'; texts: Text[] };

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** The raw `blocks` of a message or ephemeral message, if it has any. */
export function blocksOf(m: { blocks?: object[] | null }): unknown[] | undefined {
  return Array.isArray(m.blocks) && m.blocks.length > 0 ? m.blocks : undefined;
}

/** Only absolute http(s) URLs are followed or shown. */
export function safeUrl(v: unknown): string | undefined {
  const s = str(v)?.trim();
  if (!s) return undefined;
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : undefined;
  } catch {
    return undefined;
  }
}

/** Slack escapes `&`, `<` and `>` in text; plain text shows them as the characters they are. */
function unescape(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** A text object (or a bare string, read as mrkdwn), or nothing if it holds no text. */
function textOf(v: unknown): Text | undefined {
  if (typeof v === 'string') return v.trim() ? { kind: 'markdown', markdown: mrkdwnToMarkdown(v) } : undefined;
  const o = obj(v);
  const t = str(o?.text);
  if (!o || !t || !t.trim()) return undefined;
  return o.type === 'plain_text' ? { kind: 'plain', text: unescape(t) } : { kind: 'markdown', markdown: mrkdwnToMarkdown(t) };
}

/** A plain-text label (button text, placeholder, option) as the characters it shows. */
function labelOf(v: unknown): string | undefined {
  const o = obj(v);
  const t = str(o?.text) ?? str(v);
  return t === undefined ? undefined : unescape(t);
}

function styleOf(v: unknown): 'primary' | 'danger' | undefined {
  return v === 'primary' || v === 'danger' ? v : undefined;
}

function confirmOf(v: unknown): Confirm | undefined {
  const o = obj(v);
  if (!o) return undefined;
  return {
    title: labelOf(o.title) ?? 'Are you sure?',
    text: textOf(o.text) ?? { kind: 'plain', text: 'Are you sure?' },
    confirm: labelOf(o.confirm) ?? 'Yes',
    deny: labelOf(o.deny) ?? 'Cancel',
    style: styleOf(o.style),
  };
}

function optionOf(v: unknown): SelectOption | undefined {
  const o = obj(v);
  const label = labelOf(o?.text);
  const value = str(o?.value);
  return label !== undefined && value !== undefined ? { label, value } : undefined;
}

function options(v: unknown): SelectOption[] {
  return list(v).flatMap((o) => optionOf(o) ?? []);
}

/** An element, or nothing if this client does not show its kind. */
function elementOf(v: unknown): Element | undefined {
  const o = obj(v);
  if (!o) return undefined;
  switch (o.type) {
    case 'button': {
      const label = labelOf(o.text);
      if (!label) return undefined;
      return {
        kind: 'button',
        actionId: str(o.action_id) ?? '',
        label,
        value: str(o.value),
        style: styleOf(o.style),
        url: safeUrl(o.url),
        accessibilityLabel: str(o.accessibility_label),
        confirm: confirmOf(o.confirm),
      };
    }
    case 'static_select': {
      const groups = o.option_groups
        ? list(o.option_groups).flatMap((g) => {
            const group = obj(g);
            const opts = options(group?.options);
            return opts.length ? [{ label: labelOf(group?.label), options: opts }] : [];
          })
        : [{ options: options(o.options) }];
      if (!groups.some((g) => g.options.length > 0)) return undefined;
      return {
        kind: 'static_select',
        actionId: str(o.action_id) ?? '',
        placeholder: labelOf(o.placeholder) ?? 'Choose an option',
        groups,
        initial: optionOf(o.initial_option)?.value,
        confirm: confirmOf(o.confirm),
      };
    }
    case 'image': {
      const url = safeUrl(o.image_url);
      return url ? { kind: 'image', url, alt: str(o.alt_text) ?? '' } : undefined;
    }
    default:
      return undefined;
  }
}

/** Every text object found anywhere inside `v` (for blocks this client does not know). */
function textsIn(v: unknown, out: Text[] = [], depth = 0): Text[] {
  if (depth > 8) return out;
  if (Array.isArray(v)) {
    for (const x of v) textsIn(x, out, depth + 1);
    return out;
  }
  const o = obj(v);
  if (!o) return out;
  if ((o.type === 'mrkdwn' || o.type === 'plain_text') && typeof o.text === 'string') {
    const t = textOf(o);
    if (t) out.push(t);
    return out;
  }
  for (const [key, value] of Object.entries(o)) {
    if (key === 'text' && typeof value === 'string') {
      const t = textOf({ type: 'plain_text', text: value });
      if (t) out.push(t);
    } else if (typeof value === 'object') {
      textsIn(value, out, depth + 1);
    }
  }
  return out;
}

/** Markdown's special characters escaped, so rich text's own words are shown as written. */
function escapeMarkdown(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!~|<>]/g, '\\$&');
}

/** An emoji written as Slack's `unicode` field (`1f44d`, `1f1eb-1f1f7`), if it is one. */
function emoji(unicode: string | undefined): string | undefined {
  if (!unicode) return undefined;
  const points = unicode.split('-').map((h) => (/^[0-9a-f]{1,6}$/i.test(h) ? parseInt(h, 16) : -1));
  return points.every((p) => p > 0 && p <= 0x10ffff) ? String.fromCodePoint(...points) : undefined;
}

/** A rich_text block as Markdown: styled text, links, mentions, lists, quotes and code. */
function richText(v: unknown): string {
  const inline = (el: unknown): string => {
    const o = obj(el);
    if (!o) return '';
    switch (o.type) {
      case 'text': {
        const t = str(o.text) ?? '';
        const style = obj(o.style) ?? {};
        if (style.code) return `\`${t.replace(/`/g, "'")}\``;
        // Markers hug the words: Markdown ignores `** bold **`.
        const [, lead, words, trail] = /^(\s*)([\s\S]*?)(\s*)$/.exec(t) ?? ['', '', t, ''];
        if (!words) return t;
        let s = escapeMarkdown(words);
        if (style.bold) s = `**${s}**`;
        if (style.italic) s = `_${s}_`;
        if (style.strike) s = `~~${s}~~`;
        return lead + s + trail;
      }
      case 'link': {
        const url = safeUrl(o.url);
        const label = escapeMarkdown(str(o.text) ?? str(o.url) ?? '');
        return url ? `[${label}](${url.replace(/\)/g, '%29')})` : label;
      }
      case 'user':
        return `@${str(o.user_id) ?? ''}`;
      case 'usergroup':
        return '@group';
      case 'channel':
        return '#channel';
      case 'broadcast':
        return `@${str(o.range) ?? 'here'}`;
      case 'emoji':
        return emoji(str(o.unicode)) ?? `:${str(o.name) ?? ''}:`;
      default:
        return escapeMarkdown(str(o.text) ?? '');
    }
  };
  const line = (el: unknown) => list(obj(el)?.elements).map(inline).join('');
  const parts: string[] = [];
  for (const el of list(obj(v)?.elements)) {
    const o = obj(el);
    switch (o?.type) {
      case 'rich_text_list': {
        const ordered = o.style === 'ordered';
        list(o.elements).forEach((item, i) => parts.push(`${ordered ? `${i + 1}.` : '-'} ${line(item)}`));
        break;
      }
      case 'rich_text_quote':
        parts.push(
          line(o)
            .split('\n')
            .map((l) => `> ${l}`)
            .join('\n'),
        );
        break;
      case 'rich_text_preformatted': {
        const code = list(o.elements)
          .map((x) => str(obj(x)?.text) ?? str(obj(x)?.url) ?? '')
          .join('');
        parts.push('```\n' + code.replace(/```/g, "'''") + '\n```');
        break;
      }
      default:
        parts.push(line(o));
    }
  }
  return parts.join('\n\n').trim();
}

/** The blocks of a message (its `blocks` as the server passed them), in the shape shown. */
export function parseBlocks(raw: unknown): Block[] {
  const out: Block[] = [];
  for (const item of list(raw)) {
    const b = obj(item);
    if (!b) continue;
    const blockId = str(b.block_id) ?? '';
    switch (b.type) {
      case 'section': {
        const text = textOf(b.text);
        const fields = list(b.fields).flatMap((f) => textOf(f) ?? []);
        const accessory = elementOf(b.accessory);
        if (text || fields.length || accessory) out.push({ type: 'section', blockId, text, fields, accessory });
        break;
      }
      case 'context': {
        const elements = list(b.elements).flatMap((e): (Text | ImageElement)[] => {
          const el = elementOf(e);
          if (el?.kind === 'image') return [el];
          const t = textOf(e);
          return t ? [t] : [];
        });
        if (elements.length) out.push({ type: 'context', elements });
        break;
      }
      case 'divider':
        out.push({ type: 'divider' });
        break;
      case 'header': {
        const text = labelOf(b.text);
        if (text?.trim()) out.push({ type: 'header', text });
        break;
      }
      case 'image': {
        const url = safeUrl(b.image_url);
        if (url) out.push({ type: 'image', url, alt: str(b.alt_text) ?? '', title: labelOf(b.title) });
        break;
      }
      case 'actions': {
        const elements = list(b.elements).flatMap((e) => elementOf(e) ?? []);
        if (elements.length) out.push({ type: 'actions', blockId, elements });
        break;
      }
      case 'rich_text': {
        const markdown = richText(b);
        if (markdown) out.push({ type: 'text', texts: [{ kind: 'markdown', markdown }] });
        break;
      }
      default: {
        const texts = textsIn(b);
        if (texts.length) out.push({ type: 'text', texts });
      }
    }
  }
  return out;
}

/** Whether `blocks` shows anything but dividers (otherwise the message's text is shown). */
export function showsSomething(blocks: Block[]): boolean {
  return blocks.some((b) => b.type !== 'divider');
}

/**
 * Slack's mrkdwn as the Markdown `renderMessage` reads: `<url|label>` links, `<@id>` mentions
 * (`@id`, which it shows as a name), `<#id|name>` channels, `<!here>` and friends, `*bold*` and
 * `~strike~` (`_italic_` and code are the same in both). Code is left as written, but for
 * Slack's escaping of `&`, `<` and `>`, which Markdown would show as it is there.
 */
export function mrkdwnToMarkdown(text: string): string {
  let out = '';
  let last = 0;
  for (const m of text.matchAll(/```[\s\S]*?```|`[^`\n]+`/g)) {
    out += prose(text.slice(last, m.index));
    out += unescape(m[0]);
    last = m.index + m[0].length;
  }
  return out + prose(text.slice(last));
}

/** Text outside code: references and emphasis. */
function prose(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const start = rest.indexOf('<');
    const end = start < 0 ? -1 : rest.indexOf('>', start);
    if (end < 0) break;
    out += emphasis(rest.slice(0, start));
    out += reference(rest.slice(start + 1, end));
    rest = rest.slice(end + 1);
  }
  return out + emphasis(rest);
}

/** What Slack's `<...>` stands for. */
function reference(inner: string): string {
  const bar = inner.indexOf('|');
  const target = bar < 0 ? inner : inner.slice(0, bar);
  const label = bar < 0 ? '' : inner.slice(bar + 1);
  if (target.startsWith('@')) return `@${target.slice(1)}`;
  if (target.startsWith('#')) return `#${label || 'channel'}`;
  if (target.startsWith('!')) {
    const special = target.slice(1);
    if (special === 'here' || special === 'channel' || special === 'everyone') return `@${special}`;
    // <!date^…|fallback>, <!subteam^…|@team>: their fallback text.
    return label;
  }
  if (/^(https?:|mailto:)/i.test(target)) {
    const href = target.replace(/\)/g, '%29').replace(/ /g, '%20');
    return `[${emphasis((label || target).replace(/[[\]]/g, '\\$&'))}](${href})`;
  }
  return `&lt;${inner}&gt;`;
}

/**
 * Slack's `*bold*` and `~strike~` as Markdown's `**bold**` and `~~strike~~`: a marker counts
 * only as Slack counts it (single, with text right inside it, no letter or digit right outside
 * it, closed on the same line); code spans are copied untouched.
 */
function emphasis(text: string): string {
  const chars = [...text];
  let out = '';
  let i = 0;
  const word = (c: string | undefined) => c !== undefined && /[\p{L}\p{N}]/u.test(c);
  while (i < chars.length) {
    const c = chars[i];
    if (c === '`') {
      const close = chars.indexOf('`', i + 1);
      const end = close < 0 ? chars.length : close + 1;
      out += chars.slice(i, end).join('');
      i = end;
      continue;
    }
    if (c === '*' || c === '~') {
      const beforeOk = i === 0 || !(word(chars[i - 1]) || chars[i - 1] === c);
      const next = chars[i + 1];
      if (beforeOk && next !== undefined && !/\s/.test(next) && next !== c) {
        let j = i + 1;
        while (j < chars.length && chars[j] !== c && chars[j] !== '\n') j++;
        if (j < chars.length && chars[j] === c) {
          const after = chars[j + 1];
          if (!(word(after) || after === c) && !/\s/.test(chars[j - 1])) {
            out += c + c + chars.slice(i + 1, j).join('') + c + c;
            i = j + 1;
            continue;
          }
        }
      }
    }
    out += c;
    i += 1;
  }
  return out;
}

/** What a click on a button or a choice in a select tells the server. */
export type BlockAction = Schemas['MessageActionRequest'];

/** Reports an action on a message's blocks; the bot answers by editing the message or privately. */
export async function sendBlockAction(messageId: string, action: BlockAction): Promise<void> {
  await api('post', '/api/v1/messages/{message_id}/actions', { params: { path: { message_id: messageId } }, json: action });
}

/** Sends the press of a control in an ephemeral message shown to the caller. */
export async function sendEphemeralAction(ephemeralId: string, action: BlockAction): Promise<void> {
  await api('post', '/api/v1/ephemerals/{ephemeral_id}/actions', { params: { path: { ephemeral_id: ephemeralId } }, json: action });
}
