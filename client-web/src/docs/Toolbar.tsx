// The formatting toolbar: one tab stop, arrow keys move between buttons (WAI-ARIA toolbar),
// each button names its keyboard shortcut.
import type { Editor } from '@tiptap/core';
import { Fragment } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';

const mac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform);
const mod = mac ? '⌘' : 'Ctrl+';
const alt = mac ? '⌥' : 'Alt+';
const shift = mac ? '⇧' : 'Shift+';

interface Tool {
  id: string;
  label: string;
  icon: string;
  keys: string;
  run: (e: Editor) => boolean;
  active?: (e: Editor) => boolean;
  enabled?: (e: Editor) => boolean;
  groupEnd?: boolean;
}

const TOOLS: Tool[] = [
  { id: 'undo', label: 'Undo', icon: '↶', keys: `${mod}Z`, run: (e) => e.chain().focus().undo().run(), enabled: (e) => e.can().undo() },
  { id: 'redo', label: 'Redo', icon: '↷', keys: `${mod}${shift}Z`, run: (e) => e.chain().focus().redo().run(), enabled: (e) => e.can().redo(), groupEnd: true },
  { id: 'h1', label: 'Heading 1', icon: 'H1', keys: `${mod}${alt}1`, run: (e) => e.chain().focus().toggleHeading({ level: 1 }).run(), active: (e) => e.isActive('heading', { level: 1 }) },
  { id: 'h2', label: 'Heading 2', icon: 'H2', keys: `${mod}${alt}2`, run: (e) => e.chain().focus().toggleHeading({ level: 2 }).run(), active: (e) => e.isActive('heading', { level: 2 }) },
  { id: 'h3', label: 'Heading 3', icon: 'H3', keys: `${mod}${alt}3`, run: (e) => e.chain().focus().toggleHeading({ level: 3 }).run(), active: (e) => e.isActive('heading', { level: 3 }), groupEnd: true },
  { id: 'bold', label: 'Bold', icon: 'B', keys: `${mod}B`, run: (e) => e.chain().focus().toggleBold().run(), active: (e) => e.isActive('bold') },
  { id: 'italic', label: 'Italic', icon: 'I', keys: `${mod}I`, run: (e) => e.chain().focus().toggleItalic().run(), active: (e) => e.isActive('italic') },
  { id: 'strike', label: 'Strikethrough', icon: 'S', keys: `${mod}${shift}S`, run: (e) => e.chain().focus().toggleStrike().run(), active: (e) => e.isActive('strike') },
  { id: 'code', label: 'Inline code', icon: '</>', keys: `${mod}E`, run: (e) => e.chain().focus().toggleCode().run(), active: (e) => e.isActive('code'), groupEnd: true },
  { id: 'bullets', label: 'Bulleted list', icon: '•≡', keys: `${mod}${shift}8`, run: (e) => e.chain().focus().toggleBulletList().run(), active: (e) => e.isActive('bulletList') },
  { id: 'numbers', label: 'Numbered list', icon: '1≡', keys: `${mod}${shift}7`, run: (e) => e.chain().focus().toggleOrderedList().run(), active: (e) => e.isActive('orderedList') },
  { id: 'quote', label: 'Quote', icon: '❝', keys: `${mod}${shift}B`, run: (e) => e.chain().focus().toggleBlockquote().run(), active: (e) => e.isActive('blockquote') },
  { id: 'codeblock', label: 'Code block', icon: '{ }', keys: `${mod}${alt}C`, run: (e) => e.chain().focus().toggleCodeBlock().run(), active: (e) => e.isActive('codeBlock') },
];

export function Toolbar({ editor }: { editor: Editor }) {
  const [, setTick] = useState(0);
  const [focusIndex, setFocusIndex] = useState(0);
  const buttons = useRef<(HTMLButtonElement | null)[]>([]);

  useEffect(() => {
    const bump = () => setTick((n) => n + 1);
    editor.on('transaction', bump);
    editor.on('selectionUpdate', bump);
    return () => {
      editor.off('transaction', bump);
      editor.off('selectionUpdate', bump);
    };
  }, [editor]);

  const move = (to: number) => {
    const n = (to + TOOLS.length) % TOOLS.length;
    setFocusIndex(n);
    buttons.current[n]?.focus();
  };

  return (
    <div
      class="dx-toolbar"
      role="toolbar"
      aria-label="Formatting"
      aria-controls="dx-editor-content"
      onKeyDown={(e) => {
        if (e.key === 'ArrowRight') move(focusIndex + 1);
        else if (e.key === 'ArrowLeft') move(focusIndex - 1);
        else if (e.key === 'Home') move(0);
        else if (e.key === 'End') move(TOOLS.length - 1);
        else if (e.key === 'Escape') editor.commands.focus();
        else return;
        e.preventDefault();
      }}
    >
      {TOOLS.map((t, i) => {
        const active = t.active?.(editor);
        const enabled = t.enabled ? t.enabled(editor) : true;
        return (
          <Fragment key={t.id}>
            <button
              ref={(el) => {
                buttons.current[i] = el;
              }}
              type="button"
              class={`dx-tool dx-tool-${t.id}`}
              tabIndex={i === focusIndex ? 0 : -1}
              aria-label={t.label}
              aria-keyshortcuts={t.keys.replace('⌘', 'Meta+').replace('⌥', 'Alt+').replace('⇧', 'Shift+')}
              aria-pressed={t.active ? (active ? 'true' : 'false') : undefined}
              aria-disabled={!enabled ? 'true' : undefined}
              title={`${t.label} (${t.keys})`}
              onMouseDown={(e) => e.preventDefault()}
              onFocus={() => setFocusIndex(i)}
              onClick={() => enabled && t.run(editor)}
            >
              <span aria-hidden="true">{t.icon}</span>
            </button>
            {t.groupEnd && <span class="dx-tool-sep" aria-hidden="true" />}
          </Fragment>
        );
      })}
    </div>
  );
}
