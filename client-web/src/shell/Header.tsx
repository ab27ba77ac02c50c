// The top bar: the menu button (phone width), the search box (Ctrl/Cmd+K) and the account link.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Me } from '../api';
import { canSeeAdmin, canSeeCompliance } from '../console/access';
import type { Route } from '../app';
import { navigate } from './router';
import type { Workspace } from './types';
import { Avatar, Icon } from './ui';

export function Header(props: { me: Me; workspace: Workspace | null; route: Route; drawerOpen: boolean; onMenu: () => void }) {
  const { me, workspace, route } = props;
  const onSearch = workspace && route.path === `/w/${workspace.id}/search`;
  const [q, setQ] = useState(onSearch ? route.query.get('q') ?? '' : '');
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => {
    setQ(onSearch ? route.query.get('q') ?? '' : '');
  }, [onSearch, route.query.toString()]);

  useEffect(() => {
    const key = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && e.key.toLowerCase() === 'k') {
        if (!input.current) return;
        e.preventDefault();
        input.current.focus();
        input.current.select();
      }
    };
    addEventListener('keydown', key);
    return () => removeEventListener('keydown', key);
  }, []);

  const mac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
  return (
    <header class="topbar">
      <button
        type="button"
        class="icon-button menu-button"
        aria-label="Channels and workspaces"
        aria-expanded={props.drawerOpen}
        aria-controls="sidebar"
        onClick={props.onMenu}
      >
        <Icon name="menu" />
      </button>
      <a class="topbar-brand" href="/" onClick={(e) => (e.preventDefault(), navigate('/'))} aria-label="Concord home">
        <span class="brand-mark" aria-hidden="true">
          C
        </span>
        <span class="topbar-name">Concord</span>
      </a>
      {workspace && (
        <form
          class="search-form"
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            const query = q.trim();
            if (!query) return;
            navigate(`/w/${workspace.id}/search?q=${encodeURIComponent(query)}`);
          }}
        >
          <label for="global-search" class="sr-only">
            Search {workspace.name}
          </label>
          <Icon name="search" size={16} />
          <input
            id="global-search"
            ref={input}
            type="search"
            placeholder="Search"
            autoComplete="off"
            enterKeyHint="search"
            aria-keyshortcuts={mac ? 'Meta+K' : 'Control+K'}
            value={q}
            onInput={(e) => setQ(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === 'Escape') {
                setQ('');
                e.currentTarget.blur();
              }
            }}
          />
          <kbd class="search-kbd" aria-hidden="true">
            {mac ? '⌘K' : 'Ctrl K'}
          </kbd>
        </form>
      )}
      {(canSeeCompliance(me) || canSeeAdmin(me)) && (
        <nav class="topbar-areas" aria-label="Administration">
          {canSeeCompliance(me) && <AreaLink href="/compliance" label="Compliance" icon="shield" route={route} />}
          {canSeeAdmin(me) && <AreaLink href="/admin" label="Admin" icon="settings" route={route} />}
        </nav>
      )}
      <a
        class="account-link"
        href="/account"
        aria-current={route.path === '/account' ? 'page' : undefined}
        onClick={(e) => (e.preventDefault(), navigate('/account'))}
        title={`${me.display_name} — your account`}
      >
        <Avatar id={me.id} name={me.display_name} size={30} />
        <span class="sr-only">Your account ({me.display_name})</span>
      </a>
    </header>
  );
}

/** A link to the compliance or admin area (its label hidden at phone width, the icon kept). */
function AreaLink({ href, label, icon, route }: { href: string; label: string; icon: string; route: Route }) {
  const here = route.path === href || route.path.startsWith(`${href}/`);
  return (
    <a class="topbar-area" href={href} aria-current={here ? 'page' : undefined} onClick={(e) => (e.preventDefault(), navigate(href))}>
      <Icon name={icon} size={16} />
      <span class="topbar-area-label">{label}</span>
    </a>
  );
}
