// The sluice web UI: the daemon's API as pages. Its shell: navigation, the
// login page when the daemon answers 401, and the page of the path.

import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import * as api from './api.js';
import { Link, usePath, navigate, ErrorNote } from './util.jsx';
import { Connections, NewConnection } from './connections.jsx';
import { ConnectionPage } from './connection.jsx';
import { Actors, ActorPage } from './actors.jsx';
import { Jobs, JobPage } from './jobs.jsx';
import { Connectors } from './connectors.jsx';

const NAV = [
  ['/connections', 'Connections'],
  ['/sources', 'Sources'],
  ['/destinations', 'Destinations'],
  ['/jobs', 'Jobs'],
  ['/connectors', 'Connectors'],
];

function page(path) {
  const parts = path.split('?')[0].split('/').filter(Boolean).map(decodeURIComponent);
  const [top, name, sub] = parts;
  switch (top) {
    case undefined:
    case 'connections':
      if (name === 'new') return <NewConnection />;
      if (name) return <ConnectionPage key={name} name={name} tab={sub || 'status'} />;
      return <Connections />;
    case 'sources':
    case 'destinations': {
      const kind = top === 'sources' ? 'source' : 'destination';
      if (name) return <ActorPage key={`${kind}/${name}`} kind={kind} name={name === 'new' ? null : name} />;
      return <Actors key={kind} kind={kind} />;
    }
    case 'jobs':
      return name ? <JobPage key={name} id={name} /> : <Jobs />;
    case 'connectors':
      return <Connectors />;
    default:
      return <p>No such page. <Link to="/connections">Connections</Link></p>;
  }
}

function Login({ onIn }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  return (
    <main className="login">
      <h1>sluice</h1>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            await api.signIn(token.trim());
            onIn();
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <label htmlFor="token">The daemon's token</label>
        <input id="token" type="password" autoComplete="current-password" value={token} onChange={(e) => setToken(e.target.value)} autoFocus required />
        <p className="muted">
          <code>sluice daemon token</code> prints it on the daemon's machine.
        </p>
        <ErrorNote error={error} />
        <button type="submit" className="primary" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}

function App() {
  const path = usePath();
  // null: not known yet; false: the daemon wants a login.
  const [daemon, setDaemon] = useState(null);
  const [signedOut, setSignedOut] = useState(false);
  const [menu, setMenu] = useState(false);

  const probe = () =>
    api.get('/daemon').then(
      (d) => {
        setSignedOut(false);
        setDaemon(d);
      },
      (e) => {
        if (e.status === 401) setSignedOut(true);
        else setDaemon({ error: e });
      },
    );
  useEffect(() => {
    api.whenUnauthorized(() => setSignedOut(true));
    probe();
  }, []);
  useEffect(() => setMenu(false), [path]);

  if (signedOut) return <Login onIn={probe} />;
  // The page loads while the daemon is asked who it is: a 401 to either
  // shows the login page.
  const about = daemon || {};
  const tcp = location.protocol.startsWith('http');
  return (
    <>
      <a href="#main" className="skip">
        Skip to content
      </a>
      <header className="top">
        <Link to="/connections" className="brand">
          sluice
        </Link>
        <button type="button" className="menu" aria-expanded={menu} aria-controls="nav" onClick={() => setMenu(!menu)}>
          Menu
        </button>
        <nav id="nav" className={menu ? 'open' : ''} aria-label="Main">
          {NAV.map(([to, label]) => (
            <Link key={to} to={to} aria-current={path.startsWith(to) || (to === '/connections' && path === '/') ? 'page' : undefined}>
              {label}
            </Link>
          ))}
        </nav>
        <span className="muted version" title={about.store}>
          {about.version && `v${about.version}`}
        </span>
        {tcp && (
          <button
            type="button"
            className="link"
            onClick={async () => {
              await api.signOut().catch(() => {});
              setSignedOut(true);
              navigate('/');
            }}
          >
            Sign out
          </button>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        <ErrorNote error={about.error} />
        {page(path)}
      </main>
    </>
  );
}

createRoot(document.getElementById('app')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
