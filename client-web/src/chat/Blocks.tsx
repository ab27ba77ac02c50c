// A bot's message laid out as its Slack blocks (see blockkit.ts for what is understood): headers,
// sections with fields and an accessory, context lines, dividers, images, and rows of buttons
// and selects. A button or a choice is sent to the server for the bot to answer; meanwhile the
// message's controls are disabled and the one used shows it is busy, and a refusal is shown
// next to it until the next try. Text goes through `renderMessage` like any message's text.
//
// Remote images are not loaded (they would tell the image's host who reads the message, and
// the page's Content-Security-Policy refuses them): they are shown as links; images served by
// Concord itself are shown. A confirmation the bot asks for opens over the page (outside the
// message list, whose rows move as it scrolls).

import { createPortal } from 'preact/compat';
import { useContext, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, describeError } from '../api';
import { parseBlocks, sendBlockAction, sendEphemeralAction, showsSomething } from './blockkit';
import type { Block, BlockAction, Confirm, Element, Text } from './blockkit';
import { renderMessage } from './markdown';
import { ChatContext, Dialog } from './ui';

export interface BlocksProps {
  /** The message's `blocks`, as the server sent them. */
  blocks: unknown[];
  /** The message's text, shown when none of the blocks can be shown. */
  fallback: string;
  /** The message whose actions the controls send; without it (or `ephemeralId`) they are disabled. */
  messageId?: string;
  /** The ephemeral message whose actions the controls send. */
  ephemeralId?: string;
  /** Why the controls are disabled (shown as their title). */
  disabledReason?: string;
}

/** Where an action came from: its block and element, for busy and error state. */
interface Source {
  block: number;
  element: number;
}

/** An action about to be sent. */
interface Use {
  source: Source;
  action: BlockAction;
  /** A link button's page, opened as the action is sent. */
  url?: string;
}

export function Blocks(props: BlocksProps) {
  const parsed = useMemo(() => parseBlocks(props.blocks), [props.blocks]);
  const [busy, setBusy] = useState<Source | null>(null);
  const [error, setError] = useState<{ source: Source; message: string } | null>(null);
  const [asking, setAsking] = useState<(Use & { confirm: Confirm }) | null>(null);
  // Choices made in selects, for the blocks they were made in (a new version starts afresh).
  const [chosen, setChosen] = useState<{ of: unknown[]; values: Record<string, string> }>({ of: props.blocks, values: {} });
  const inFlight = useRef(false);

  if (!showsSomething(parsed)) return <Markdown markdown={props.fallback} />;

  const target = props.messageId ?? props.ephemeralId;
  const disabledReason = target ? props.disabledReason : (props.disabledReason ?? 'This message cannot be answered');
  const send = async ({ source, action, url }: Use) => {
    const { messageId, ephemeralId } = props;
    if ((!messageId && !ephemeralId) || inFlight.current) return;
    if (url) window.open(url, '_blank', 'noopener,noreferrer');
    inFlight.current = true;
    setBusy(source);
    setError(null);
    try {
      if (messageId) await sendBlockAction(messageId, action);
      else if (ephemeralId) await sendEphemeralAction(ephemeralId, action);
    } catch (err) {
      // A link button works without the bot hearing of it, as in Slack.
      const quiet = url && err instanceof ApiError && err.code === 'not_interactive';
      if (!quiet) setError({ source, message: describeError(err) });
    } finally {
      inFlight.current = false;
      setBusy(null);
    }
  };
  const act = (use: Use, confirm?: Confirm) => {
    if (confirm) setAsking({ ...use, confirm });
    else void send(use);
  };
  const controls: Controls = {
    busy,
    disabled: !!disabledReason,
    waiting: busy !== null,
    disabledReason,
    chosen: chosen.of === props.blocks ? chosen.values : {},
    choose: (key, value) =>
      setChosen((c) => ({ of: props.blocks, values: { ...(c.of === props.blocks ? c.values : {}), [key]: value } })),
    act,
  };

  return (
    <div class="blocks">
      {parsed.map((block, i) => (
        <div class={`blk blk-${block.type}`} key={i}>
          <BlockView block={block} index={i} controls={controls} />
          {error && error.source.block === i && (
            <p class="inline-error blk-error" role="alert">
              {error.message}
            </p>
          )}
        </div>
      ))}
      {asking &&
        createPortal(
        <Dialog title={asking.confirm.title} onClose={() => setAsking(null)}>
          <TextView text={asking.confirm.text} />
          <div class="dialog-actions">
            <button type="button" class="btn-small" onClick={() => setAsking(null)}>
              {asking.confirm.deny}
            </button>
            <button
              type="button"
              class={`btn-small ${asking.confirm.style ?? 'primary'}`}
              onClick={() => {
                setAsking(null);
                void send(asking);
              }}
            >
              {asking.confirm.confirm}
            </button>
          </div>
        </Dialog>,
          document.body,
        )}
    </div>
  );
}

/** What the interactive elements of one message share. */
interface Controls {
  busy: Source | null;
  /** Actions cannot be sent from here at all. */
  disabled: boolean;
  /**
   * An action is in flight: the controls refuse input (`aria-disabled`) but keep the focus,
   * so a keyboard user stays where they were.
   */
  waiting: boolean;
  disabledReason?: string;
  /** Select choices by `block/element`. */
  chosen: Record<string, string>;
  choose: (key: string, value: string) => void;
  act: (use: Use, confirm?: Confirm) => void;
}

function BlockView({ block, index, controls }: { block: Block; index: number; controls: Controls }) {
  switch (block.type) {
    case 'header':
      return <h3 class="blk-header-text">{block.text}</h3>;
    case 'divider':
      return <hr />;
    case 'section':
      return (
        <div class="blk-section-row">
          <div class="blk-section-main">
            {block.text && <TextView text={block.text} />}
            {block.fields.length > 0 && (
              <div class="blk-fields">
                {block.fields.map((f, i) => (
                  <TextView key={i} text={f} />
                ))}
              </div>
            )}
          </div>
          {block.accessory && (
            <div class="blk-accessory">
              <ElementView element={block.accessory} blockId={block.blockId} source={{ block: index, element: 0 }} controls={controls} />
            </div>
          )}
        </div>
      );
    case 'context':
      return (
        <div class="blk-context-row">
          {block.elements.map((e, i) =>
            e.kind === 'image' ? <Picture key={i} url={e.url} alt={e.alt} small /> : <TextView key={i} text={e} />,
          )}
        </div>
      );
    case 'image':
      return <Picture url={block.url} alt={block.alt} title={block.title} />;
    case 'actions':
      return (
        <div class="blk-actions-row" role="group" aria-label="Actions">
          {block.elements.map((e, i) => (
            <ElementView key={i} element={e} blockId={block.blockId} source={{ block: index, element: i }} controls={controls} />
          ))}
        </div>
      );
    case 'text':
      return (
        <>
          {block.texts.map((t, i) => (
            <TextView key={i} text={t} />
          ))}
        </>
      );
  }
}

function ElementView(props: { element: Element; blockId: string; source: Source; controls: Controls }) {
  const { element, blockId, source, controls } = props;
  const busy = controls.busy?.block === source.block && controls.busy.element === source.element;
  switch (element.kind) {
    case 'image':
      return <Picture url={element.url} alt={element.alt} small />;
    case 'button': {
      const action: BlockAction = { block_id: blockId, action_id: element.actionId };
      if (element.value !== undefined) action.value = element.value;
      return (
        <button
          type="button"
          class={`btn-small blk-button${element.style ? ` ${element.style}` : ''}${busy ? ' busy' : ''}`}
          aria-label={element.accessibilityLabel}
          aria-busy={busy}
          aria-disabled={controls.waiting}
          disabled={controls.disabled}
          title={controls.disabledReason}
          onClick={() => {
            if (controls.waiting) return;
            controls.act({ source, action, url: element.url }, element.confirm);
          }}
        >
          {element.label}
          {busy && <span class="visually-hidden"> (sending…)</span>}
        </button>
      );
    }
    case 'static_select': {
      const key = `${source.block}/${source.element}`;
      const value = controls.chosen[key] ?? element.initial ?? '';
      return (
        <select
          class={`blk-select${busy ? ' busy' : ''}`}
          aria-label={element.placeholder}
          aria-busy={busy}
          aria-disabled={controls.waiting}
          disabled={controls.disabled}
          title={controls.disabledReason}
          value={value}
          onKeyDown={(e) => {
            // Arrows on a closed select would change it (and send a choice) at every step:
            // they open the list instead, where Enter chooses.
            const el = e.currentTarget;
            if (!['ArrowDown', 'ArrowUp', 'PageDown', 'PageUp', 'Home', 'End'].includes(e.key) || e.altKey) return;
            if (typeof el.showPicker !== 'function') return;
            e.preventDefault();
            try {
              el.showPicker();
            } catch {
              /* not allowed here: the arrows are lost, Space or Alt+Down still open it */
            }
          }}
          onChange={(e) => {
            const el = e.target as HTMLSelectElement;
            const chosen = el.value;
            if (controls.waiting) {
              el.value = value;
              return;
            }
            if (!chosen) return;
            controls.choose(key, chosen);
            controls.act({ source, action: { block_id: blockId, action_id: element.actionId, selected_option: chosen } }, element.confirm);
          }}
        >
          <option value="" disabled>
            {element.placeholder}
          </option>
          {element.groups.map((g, gi) =>
            g.label !== undefined ? (
              <optgroup key={gi} label={g.label}>
                {g.options.map((o) => (
                  <option key={o.value} value={o.value}>
                    {o.label}
                  </option>
                ))}
              </optgroup>
            ) : (
              g.options.map((o) => (
                <option key={o.value} value={o.value}>
                  {o.label}
                </option>
              ))
            ),
          )}
        </select>
      );
    }
  }
}

function TextView({ text }: { text: Text }) {
  if (text.kind === 'plain') return <div class="blk-plain">{text.text}</div>;
  return <Markdown markdown={text.markdown} />;
}

function Markdown({ markdown }: { markdown: string }) {
  const ctx = useContext(ChatContext)!;
  return (
    <div
      class="msg-body"
      // Sanitised by DOMPurify in renderMessage.
      dangerouslySetInnerHTML={{ __html: renderMessage(markdown, ctx.people, ctx.me, ctx.peopleVersion) }}
    />
  );
}

/** An image of a block: shown if Concord serves it, otherwise a link to it. */
function Picture({ url, alt, title, small }: { url: string; alt: string; title?: string; small?: boolean }) {
  const local = new URL(url).origin === location.origin;
  if (local) {
    return (
      <figure class={small ? 'blk-picture small' : 'blk-picture'}>
        <img src={url} alt={alt} title={title} loading="lazy" referrerpolicy="no-referrer" />
        {title && !small && <figcaption>{title}</figcaption>}
      </figure>
    );
  }
  const label = title || alt || (small ? '' : 'Image');
  if (!label) return null;
  return (
    <a class={small ? 'blk-image-link small' : 'blk-image-link'} href={url} target="_blank" rel="noopener noreferrer nofollow" title={alt || undefined}>
      <span aria-hidden="true">🖼</span>
      {label}
    </a>
  );
}
