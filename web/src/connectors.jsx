// Connectors: the built-in and installed ones, and any `python:` or
// `docker:` reference, installed or pulled with its progress shown.

import { useState } from 'react';
import * as api from './api.js';
import { useLoad, ErrorNote, Loading, Head } from './util.jsx';

/** Installs (python:) or pulls (docker:) a reference; its steps to `onStep`. */
async function fetchConnector(reference, onStep) {
  const verb = reference.startsWith('docker:') ? 'pull' : 'install';
  return api.run('POST', `/connectors/${verb}`, { connector: reference }, (e) => {
    if (e.message) onStep(e.message);
  });
}

function GetConnector({ onDone }) {
  const [reference, setReference] = useState('');
  const [step, setStep] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const runtime = reference.startsWith('docker:') ? 'Pull' : 'Install';
  return (
    <form
      className="row wrap"
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(null);
        try {
          const info = await fetchConnector(reference.trim(), setStep);
          setStep(`Ready: ${info.reference} ${info.version || ''}`);
          onDone(info.reference);
        } catch (err) {
          setError(err);
          setStep('');
        } finally {
          setBusy(false);
        }
      }}
    >
      <label>
        Reference{' '}
        <input value={reference} onChange={(e) => setReference(e.target.value)} placeholder="python:airbyte-source-faker==7.2.1 or docker:airbyte/source-faker:6.2.1" pattern="(python|docker):.+" required size={40} />
      </label>
      <button type="submit" disabled={busy}>
        {runtime}
      </button>
      {step && (
        <span className="muted" aria-live="polite">
          {step}
        </span>
      )}
      <ErrorNote error={error} />
    </form>
  );
}

/** Chooses a connector of a kind: a known one, or any reference. */
export function ConnectorPicker({ kind, value, onChange }) {
  const list = useLoad((s) => api.get('/connectors', s), []);
  const [typed, setTyped] = useState('');
  const usable = (list.data || []).filter((c) => c.kind.includes(kind));
  return (
    <fieldset>
      <legend>Connector</legend>
      <ErrorNote error={list.error} />
      <label className="block">
        Known connectors{' '}
        <select id="connector" value={usable.some((c) => c.reference === value) ? value : ''} onChange={(e) => e.target.value && onChange(e.target.value)}>
          <option value="">choose…</option>
          {usable.map((c) => (
            <option key={c.reference} value={c.reference}>
              {c.reference} ({c.runtime}) — {c.description}
            </option>
          ))}
        </select>
      </label>
      <div className="row wrap">
        <label>
          Or a reference{' '}
          <input value={typed} onChange={(e) => setTyped(e.target.value)} placeholder="python:PACKAGE==VERSION, docker:IMAGE:TAG, exec:/path" size={40} />
        </label>
        <button type="button" disabled={!typed.trim()} onClick={() => onChange(typed.trim())}>
          Use
        </button>
      </div>
      <details>
        <summary>Install a Python connector or pull a Docker image first</summary>
        <GetConnector
          onDone={(ref) => {
            list.reload();
            onChange(ref);
          }}
        />
      </details>
    </fieldset>
  );
}

export function Connectors() {
  const list = useLoad((s) => api.get('/connectors', s), []);
  return (
    <section aria-labelledby="h-connectors">
      <h1 id="h-connectors">Connectors</h1>
      <p className="muted">Built in, and installed on the daemon's machine.</p>
      <ErrorNote error={list.error} />
      {!list.data ? (
        <Loading what="connectors" />
      ) : (
        <div className="scroll">
          <table className="table">
            <Head cols={['Reference', 'Runtime', 'Kind', 'Version', 'Description']} />
            <tbody>
              {list.data.map((c) => (
                <tr key={c.reference}>
                  <td>
                    <code>{c.reference}</code>
                  </td>
                  <td>{c.runtime}</td>
                  <td>{c.kind}</td>
                  <td>{c.version}</td>
                  <td>{c.description}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Add one</h2>
      <GetConnector onDone={list.reload} />
    </section>
  );
}
