// Choosing streams from a source's discovered catalog: which streams, the
// sync modes, and each stream's cursor and primary key. The connection
// spec holds modes for all its streams; cursors and keys are per stream.

import { useMemo, useState } from 'react';

export const SYNC_MODES = ['full_refresh', 'incremental'];
export const DEST_MODES = ['overwrite', 'append', 'append_dedup'];

export const streamName = (s) => (s.namespace ? `${s.namespace}.${s.name}` : s.name);

function fieldsOf(stream) {
  const props = (stream.json_schema && stream.json_schema.properties) || {};
  return Object.keys(props);
}

/** The spec's fields of a choice, for a create or a patch. */
export function specOf(choice) {
  if (choice.streams && choice.streams.length === 0) throw new Error('Choose at least one stream.');
  return { ...choice, streams: choice.streams || [] };
}

/** The spec fields a choice sets, from a connection (or defaults). */
export function choiceOf(conn) {
  return {
    // null: every stream, new ones too (the spec's empty list).
    streams: conn && conn.streams && conn.streams.length ? conn.streams : null,
    sync_mode: (conn && conn.sync_mode) || 'full_refresh',
    destination_sync_mode: (conn && conn.destination_sync_mode) || 'overwrite',
    cursors: (conn && conn.cursors) || {},
    primary_keys: (conn && conn.primary_keys) || {},
  };
}

/**
 * The streams of `catalog` with their choices. `value` is the spec's
 * fields (streams empty = all); `onChange` gets the new ones.
 */
export function StreamPicker({ catalog, value, onChange }) {
  const [filter, setFilter] = useState('');
  const streams = catalog.streams || [];
  const all = value.streams === null;
  const chosen = useMemo(() => new Set(all ? streams.map(streamName) : value.streams), [value.streams, streams, all]);
  const set = (patch) => onChange({ ...value, ...patch });
  const toggle = (name, on) => {
    const next = new Set(chosen);
    if (on) next.add(name);
    else next.delete(name);
    // Every stream chosen is written as "all": new streams join then.
    set({ streams: next.size === streams.length ? null : streams.map(streamName).filter((n) => next.has(n)) });
  };
  const shown = streams.filter((s) => streamName(s).toLowerCase().includes(filter.toLowerCase()));
  const incremental = value.sync_mode === 'incremental';
  const dedup = value.destination_sync_mode === 'append_dedup';
  return (
    <div className="streams">
      <div className="row wrap">
        <label>
          Sync mode{' '}
          <select id="sync-mode" value={value.sync_mode} onChange={(e) => set({ sync_mode: e.target.value })}>
            {SYNC_MODES.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </label>
        <label>
          Destination sync mode{' '}
          <select id="destination-sync-mode" value={value.destination_sync_mode} onChange={(e) => set({ destination_sync_mode: e.target.value })}>
            {DEST_MODES.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </label>
        <label>
          Filter <input type="search" value={filter} onChange={(e) => setFilter(e.target.value)} placeholder="stream name" />
        </label>
      </div>
      <table className="table">
        <thead>
          <tr>
            <th scope="col">
              <input
                type="checkbox"
                aria-label="All streams"
                checked={chosen.size === streams.length}
                onChange={(e) => set({ streams: e.target.checked ? null : [] })}
              />
            </th>
            <th scope="col">Stream</th>
            <th scope="col">Modes it supports</th>
            {incremental && <th scope="col">Cursor</th>}
            {dedup && <th scope="col">Primary key</th>}
            <th scope="col">Fields</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((s) => {
            const name = streamName(s);
            const fields = fieldsOf(s);
            const candidates = s.json_schema && s.json_schema['x-cursor-candidates'];
            const cursor = (value.cursors[name] || s.default_cursor_field || [])[0] || '';
            const pk = ((value.primary_keys[name] || s.source_defined_primary_key || [])[0] || [])[0] || '';
            return (
              <tr key={name}>
                <td>
                  <input type="checkbox" aria-label={`Sync ${name}`} checked={chosen.has(name)} onChange={(e) => toggle(name, e.target.checked)} />
                </td>
                <td>{name}</td>
                <td className="muted">{(s.supported_sync_modes || []).join(', ')}</td>
                {incremental && (
                  <td>
                    <select
                      aria-label={`Cursor of ${name}`}
                      value={cursor}
                      disabled={s.source_defined_cursor}
                      onChange={(e) => {
                        const cursors = { ...value.cursors };
                        if (e.target.value) cursors[name] = [e.target.value];
                        else delete cursors[name];
                        set({ cursors });
                      }}
                    >
                      <option value="">(the source's)</option>
                      {(candidates || fields).map((f) => (
                        <option key={f}>{f}</option>
                      ))}
                    </select>
                  </td>
                )}
                {dedup && (
                  <td>
                    <select
                      aria-label={`Primary key of ${name}`}
                      value={pk}
                      onChange={(e) => {
                        const keys = { ...value.primary_keys };
                        if (e.target.value) keys[name] = [[e.target.value]];
                        else delete keys[name];
                        set({ primary_keys: keys });
                      }}
                    >
                      <option value="">(the source's)</option>
                      {fields.map((f) => (
                        <option key={f}>{f}</option>
                      ))}
                    </select>
                  </td>
                )}
                <td className="muted fields">{fields.join(', ')}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <p className="muted">
        {chosen.size} of {streams.length} streams. Every field of a chosen stream is synced.
      </p>
    </div>
  );
}
