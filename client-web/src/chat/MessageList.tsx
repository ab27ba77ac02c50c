// The channel's messages, virtualised with @tanstack/virtual-core: only the rows near the
// viewport are in the DOM, each measured as it renders (text wraps, previews load). Newest at
// the bottom; anchored to the end, so the view follows new messages while it is at the bottom,
// and keeps the reader's place when older pages are prepended.

import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useReducer, useRef } from 'preact/hooks';
import {
  Virtualizer,
  elementScroll,
  measureElement,
  observeElementOffset,
  observeElementRect,
} from '@tanstack/virtual-core';
import type { OutboxItem } from '../live';
import { MessageRow } from './Message';
import type { Message } from './types';

export interface Row {
  key: string;
  message?: Message;
  pending?: OutboxItem;
  compact: boolean;
  day?: string;
  /** The first message not read when the channel was opened. */
  unread?: boolean;
}

export interface ScrollRequest {
  kind: 'end' | 'key';
  key?: string;
  nonce: number;
}

const HEADER = 56;

export function MessageList(props: {
  rows: Row[];
  label: string;
  highlightId?: string;
  header: ComponentChildren;
  busy: boolean;
  scroll: ScrollRequest;
  onNearTop: () => void;
  onNearBottom: () => void;
  onAtBottom: (atBottom: boolean) => void;
}) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const [, rerender] = useReducer((x: number) => x + 1, 0);
  const atBottom = useRef(true);
  // Paging waits until a scroll command has landed (the list opens at the top for a frame).
  const settled = useRef(false);
  const cb = useRef(props);
  cb.current = props;
  const rows = props.rows;

  const vRef = useRef<Virtualizer<HTMLDivElement, HTMLDivElement> | null>(null);
  // New functions only when the rows change: the virtualizer recomputes its layout when they do.
  const keyed = useMemo(
    () => ({
      estimateSize: (i: number) => (rows[i]?.compact ? 28 : 64) + (rows[i]?.day ? 40 : 0),
      getItemKey: (i: number) => rows[i]?.key ?? i,
    }),
    [rows],
  );
  const options = {
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: keyed.estimateSize,
    getItemKey: keyed.getItemKey,
    scrollToFn: elementScroll,
    observeElementRect,
    observeElementOffset,
    measureElement,
    overscan: 10,
    paddingStart: HEADER,
    paddingEnd: 12,
    anchorTo: 'end' as const,
    followOnAppend: true,
    scrollEndThreshold: 48,
    onChange: (v: Virtualizer<HTMLDivElement, HTMLDivElement>) => {
      const bottom = v.isAtEnd(48);
      if (bottom !== atBottom.current) {
        atBottom.current = bottom;
        cb.current.onAtBottom(bottom);
      }
      rerender(0);
    },
  };
  if (!vRef.current) vRef.current = new Virtualizer(options);
  const v = vRef.current;
  v.setOptions(options);

  useLayoutEffect(() => v._didMount(), []);
  useLayoutEffect(() => {
    v._willUpdate();
  });

  // Scroll commands from the view: to the end (opening, "jump to latest") or to a message.
  useLayoutEffect(() => {
    settled.current = false;
    const t = setTimeout(() => {
      settled.current = true;
      rerender(0);
    }, 400);
    if (props.scroll.kind === 'end') {
      v.scrollToEnd();
      requestAnimationFrame(() => v.scrollToEnd());
    } else if (props.scroll.key) {
      const i = rows.findIndex((r) => r.key === props.scroll.key || r.message?.id === props.scroll.key);
      if (i >= 0) {
        v.scrollToIndex(i, { align: 'center' });
        requestAnimationFrame(() => v.scrollToIndex(i, { align: 'center' }));
      }
    }
    return () => clearTimeout(t);
  }, [props.scroll.nonce]);

  const items = v.getVirtualItems();
  const first = items[0]?.index ?? 0;
  const last = items[items.length - 1]?.index ?? 0;
  useEffect(() => {
    if (rows.length === 0 || !settled.current) return;
    if (first <= 3) cb.current.onNearTop();
    if (last >= rows.length - 3) cb.current.onNearBottom();
  }, [first, last, rows.length, settled.current]);

  return (
    <div
      class="msg-scroller"
      ref={scrollRef}
      role="feed"
      aria-label={props.label}
      aria-busy={props.busy}
      onKeyDown={(e) => {
        // Arrow keys move between messages; Home/End jump to the ends of what is loaded.
        const article = (e.target as HTMLElement).closest?.('article.msg');
        if (!article || e.target !== article) return;
        const slot = article.closest<HTMLElement>('.msg-slot');
        const index = Number(slot?.dataset.index ?? -1);
        let to = -1;
        if (e.key === 'ArrowDown') to = index + 1;
        else if (e.key === 'ArrowUp') to = index - 1;
        else if (e.key === 'Home') to = 0;
        else if (e.key === 'End') to = rows.length - 1;
        if (to < 0 || to >= rows.length || index < 0) return;
        e.preventDefault();
        const focus = () =>
          scrollRef.current?.querySelector<HTMLElement>(`.msg-slot[data-index="${to}"] article.msg`)?.focus();
        v.scrollToIndex(to, { align: 'auto' });
        focus();
        requestAnimationFrame(() => requestAnimationFrame(focus));
      }}
    >
      <div class="msg-spacer" />
      <div class="msg-canvas" style={{ height: `${v.getTotalSize()}px` }}>
        <div class="msg-list-head" style={{ height: `${HEADER}px` }}>
          {props.header}
        </div>
        {items.map((vi) => {
          const row = rows[vi.index];
          if (!row) return null;
          return (
            <div
              key={vi.key as string}
              data-index={vi.index}
              ref={v.measureElement}
              class="msg-slot"
              style={{ transform: `translateY(${vi.start}px)` }}
            >
              <MessageRow
                message={row.message}
                pending={row.pending}
                compact={row.compact}
                day={row.day}
                unread={row.unread}
                position={vi.index + 1}
                highlight={!!props.highlightId && row.message?.id === props.highlightId}
              />
            </div>
          );
        })}
      </div>
    </div>
  );
}
