// Sources and destinations: lists, and a page to create or edit one with a
// form generated from its connector's spec. Secrets come masked from the
// API and go back masked when untouched, so the stored value stays and is
// never sent to the browser.

import { useEffect, useState } from 'react';
import * as api from './api.js';
import { Link, useLoad, ErrorNote, Loading, when, navigate, confirmed, Head } from './util.jsx';
import { ConfigForm, MASK } from './form.jsx';
import { ConnectorPicker } from './connectors.jsx';

const plural = (kind) => `${kind}s`;
const title = (kind) => (kind === 'source' ? 'Sources' : 'Destinations');

export function Actors({ kind }) {
  const list = useLoad((s) => api.get(`/${plural(kind)}`, s), [kind]);
  return (
    <section aria-labelledby="h-actors">
      <div className="row spread">
        <h1 id="h-actors">{title(kind)}</h1>
        <Link to={`/${plural(kind)}/new`} className="button primary">
          New {kind}
        </Link>
      </div>
      <ErrorNote error={list.error} />
      {!list.data ? (
        <Loading what={plural(kind)} />
      ) : list.data.length === 0 ? (
        <p className="muted">None yet.</p>
      ) : (
        <div className="scroll">
          <table className="table">
            <Head cols={['Name', 'Connector', 'Updated']} />
            <tbody>
              {list.data.map((a) => (
                <tr key={a.name}>
                  <td>
                    <Link to={`/${plural(kind)}/${api.seg(a.name)}`}>{a.name}</Link>
                  </td>
                  <td>
                    <code>{a.connector}</code>
                  </td>
                  <td>{when(a.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

const hasMask = (v) => (v === MASK ? true : v && typeof v === 'object' ? Object.values(v).some(hasMask) : false);

/** A new one (`name` null) or a stored one, in its connector's form. */
export function ActorPage({ kind, name }) {
  const stored = useLoad((s) => (name ? api.get(`/${plural(kind)}/${api.seg(name)}`, s) : Promise.resolve(null)), [kind, name]);
  const [connector, setConnector] = useState(null);
  const [newName, setNewName] = useState('');
  const [spec, setSpec] = useState(null);
  const [config, setConfig] = useState(undefined);
  const [dirty, setDirty] = useState(false);
  const [check, setCheck] = useState(true);
  const [step, setStep] = useState('');
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (stored.data) {
      setConnector(stored.data.connector);
      setConfig(stored.data.config);
    }
  }, [stored.data]);
  useEffect(() => {
    if (!connector) return undefined;
    const ctl = new AbortController();
    setSpec(null);
    setError(null);
    setStep(`Reading the spec of ${connector}…`);
    api
      .run('POST', '/connectors/spec', { connector }, (e) => e.message && setStep(e.message), ctl.signal)
      .then(
        (s) => setSpec(s.connectionSpecification),
        (e) => !ctl.signal.aborted && setError(e),
      )
      .finally(() => !ctl.signal.aborted && setStep(''));
    return () => ctl.abort();
  }, [connector]);

  const test = async () => {
    setResult(null);
    setError(null);
    setBusy(true);
    setStep('Testing…');
    try {
      let r;
      if (name && !dirty) r = await api.run('POST', `/${plural(kind)}/${api.seg(name)}/check`, {});
      else if (hasMask(config)) {
        setResult({ status: 'FAILED', message: 'The form keeps a stored secret; save to test with it, or type it again.' });
        return;
      } else r = await api.run('POST', '/connectors/check', { connector, config });
      setResult(r);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
      setStep('');
    }
  };
  const save = async (data) => {
    setResult(null);
    setError(null);
    setBusy(true);
    setStep(check ? 'Checking and saving…' : 'Saving…');
    try {
      if (name) {
        await api.run('PATCH', `/${plural(kind)}/${api.seg(name)}`, { kind, name, config: data, check });
      } else {
        await api.run('POST', `/${plural(kind)}`, { kind, name: newName, connector, config: data, check });
      }
      navigate(`/${plural(kind)}`);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
      setStep('');
    }
  };
  const remove = async () => {
    if (!confirmed(`Delete the ${kind} ${name}?`)) return;
    try {
      await api.call('DELETE', `/${plural(kind)}/${api.seg(name)}`);
      navigate(`/${plural(kind)}`);
    } catch (e) {
      setError(e);
    }
  };

  if (name && !stored.data) return stored.error ? <ErrorNote error={stored.error} /> : <Loading what={`the ${kind}`} />;
  return (
    <section aria-labelledby="h-actor">
      <h1 id="h-actor">{name ? `${kind[0].toUpperCase()}${kind.slice(1)} ${name}` : `New ${kind}`}</h1>
      {name ? (
        <p className="muted">
          Connector <code>{connector}</code>
        </p>
      ) : (
        <>
          <ConnectorPicker kind={kind} value={connector} onChange={setConnector} />
          <label className="block">
            Name <input id="actor-name" value={newName} onChange={(e) => setNewName(e.target.value)} required />
          </label>
        </>
      )}
      {step && (
        <p className="muted" aria-live="polite">
          {step}
        </p>
      )}
      {spec && (
        <ConfigForm
          id="config"
          spec={spec}
          config={config}
          onChange={(c) => {
            setConfig(c);
            setDirty(true);
          }}
          onSubmit={save}
        >
          <label className="inline">
            <input type="checkbox" checked={check} onChange={(e) => setCheck(e.target.checked)} /> Run the connector's check before saving
          </label>
          {result && (
            <div className={`check ${result.status === 'SUCCEEDED' ? 'ok' : 'bad'}`} role="status" id="check-result">
              <strong>{result.status}</strong> {result.message}
            </div>
          )}
          <ErrorNote error={error} />
          <div className="row spread">
            <div className="row">
              <button type="button" onClick={test} disabled={busy}>
                Test
              </button>
              <button type="submit" className="primary" disabled={busy || (!name && !newName)}>
                Save
              </button>
            </div>
            {name && (
              <button type="button" className="danger" onClick={remove}>
                Delete
              </button>
            )}
          </div>
        </ConfigForm>
      )}
      {!spec && <ErrorNote error={error} />}
    </section>
  );
}
