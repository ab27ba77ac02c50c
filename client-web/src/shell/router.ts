// In-app navigation with the History API. `app.tsx` re-exports `navigate` for the views.

/** Goes to an in-app path (pushes a history entry unless `replace`). */
export function navigate(path: string, opts: { replace?: boolean } = {}) {
  if (path === location.pathname + location.search + location.hash) return;
  if (opts.replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  dispatchEvent(new PopStateEvent('popstate'));
}

/** Follows in-app links with `navigate` instead of a page load (plain left clicks only). */
export function linkClick(e: MouseEvent) {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.currentTarget as HTMLElement).closest('a');
  const href = a?.getAttribute('href');
  if (!href || !href.startsWith('/') || href.startsWith('//') || a?.target) return;
  e.preventDefault();
  navigate(href);
}

/** A `next` parameter that is safe to follow (same origin, in-app path). */
export function safeNext(next: string | null | undefined): string {
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';
}
