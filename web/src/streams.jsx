// Choosing streams from a source's discovered catalog: which streams, the
// sync modes for all of them and for each on its own, each stream's cursor
// and primary key, and the fields it syncs.

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
    destination_sync_mode: (conn && conn.destination_sync_mode) || destDefault(conn && conn.sync_mode),
    cursors: (conn && conn.cursors) || {},
    primary_keys: (conn && conn.primary_keys) || {},
    sync_modes: (conn && conn.sync_modes) || {},
    destination_sync_modes: (conn && conn.destination_sync_modes) || {},
    selected_fields: (conn && conn.selected_fields) || {},
  };
}

/** A copy of `map` with `key` set to `v`, or without it when `v` is empty. */
function put(map, key, v) {
  const next = { ...map };
  if (v === undefined || v === null || v === '') delete next[key];
  else next[key] = v;
  return next;
}

/** What a destination mode defaults to for a sync mode (as the service does). */
const destDefault = (syncMode) => (syncMode === 'incremental' ? 'append' : 'overwrite');

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
  return (
    <div className="streams">
      <div className="row wrap">
        <label>
          Sync mode{' '}
          <select
            id="sync-mode"
            value={value.sync_mode}
            onChange={(e) => {
              const sync_mode = e.target.value;
              // The destination mode follows when it was the old mode's default.
              const dest = value.destination_sync_mode === destDefault(value.sync_mode) ? destDefault(sync_mode) : value.destination_sync_mode;
              set({ sync_mode, destination_sync_mode: dest });
            }}
          >
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
      <p className="muted">These modes apply to every stream; a stream's row can choose its own.</p>
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
            <th scope="col">Sync mode</th>
            <th scope="col">Destination sync mode</th>
            <th scope="col">Cursor</th>
            <th scope="col">Primary key</th>
            <th scope="col">Fields</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((s) => (
            <StreamRow key={streamName(s)} s={s} value={value} set={set} on={chosen.has(streamName(s))} toggle={toggle} />
          ))}
        </tbody>
      </table>
      <p className="muted">
        {chosen.size} of {streams.length} streams.
      </p>
    </div>
  );
}

function StreamRow({ s, value, set, on, toggle }) {
  const name = streamName(s);
  const fields = fieldsOf(s);
  const supported = s.supported_sync_modes || ['full_refresh'];
  const mode = value.sync_modes[name] || value.sync_mode;
  const dest = value.destination_sync_modes[name] || value.destination_sync_mode;
  const incremental = mode === 'incremental';
  const dedup = dest === 'append_dedup';
  const candidates = s.json_schema && s.json_schema['x-cursor-candidates'];
  const cursor = (value.cursors[name] || s.default_cursor_field || [])[0] || '';
  const pk = ((value.primary_keys[name] || s.source_defined_primary_key || [])[0] || [])[0] || '';
  // The fields the sync needs stay selected.
  const needed = new Set([incremental && cursor, dedup && pk].filter(Boolean));
  const selected = value.selected_fields[name] ? new Set(value.selected_fields[name]) : null;
  const isOn = (f) => !selected || selected.has(f) || needed.has(f);
  const setField = (f, keep) => {
    const next = fields.filter((g) => (g === f ? keep : isOn(g)));
    set({ selected_fields: put(value.selected_fields, name, next.length === fields.length ? null : next) });
  };
  const count = fields.filter(isOn).length;
  return (
    <tr>
      <td>
        <input type="checkbox" aria-label={`Sync ${name}`} checked={on} onChange={(e) => toggle(name, e.target.checked)} />
      </td>
      <td>{name}</td>
      <td>
        <select
          aria-label={`Sync mode of ${name}`}
          value={value.sync_modes[name] || ''}
          onChange={(e) => {
            const m = e.target.value || value.sync_mode;
            // An incremental stream cannot overwrite: it appends unless told.
            const own = m === 'incremental' && dest === 'overwrite' ? 'append' : value.destination_sync_modes[name];
            set({ sync_modes: put(value.sync_modes, name, e.target.value), destination_sync_modes: put(value.destination_sync_modes, name, own) });
          }}
        >
          <option value="">(all streams': {value.sync_mode})</option>
          {supported.map((m) => (
            <option key={m}>{m}</option>
          ))}
        </select>
      </td>
      <td>
        <select
          aria-label={`Destination sync mode of ${name}`}
          value={value.destination_sync_modes[name] || ''}
          onChange={(e) => set({ destination_sync_modes: put(value.destination_sync_modes, name, e.target.value) })}
        >
          <option value="">(all streams': {value.destination_sync_mode})</option>
          {DEST_MODES.map((m) => (
            <option key={m}>{m}</option>
          ))}
        </select>
      </td>
      <td>
        {incremental ? (
          <select
            aria-label={`Cursor of ${name}`}
            value={cursor}
            disabled={s.source_defined_cursor}
            onChange={(e) => set({ cursors: put(value.cursors, name, e.target.value ? [e.target.value] : null) })}
          >
            <option value="">(the source's)</option>
            {(candidates || fields).map((f) => (
              <option key={f}>{f}</option>
            ))}
          </select>
        ) : (
          <span className="muted">not incremental</span>
        )}
      </td>
      <td>
        {dedup ? (
          <select
            aria-label={`Primary key of ${name}`}
            value={pk}
            onChange={(e) => set({ primary_keys: put(value.primary_keys, name, e.target.value ? [[e.target.value]] : null) })}
          >
            <option value="">(the source's)</option>
            {fields.map((f) => (
              <option key={f}>{f}</option>
            ))}
          </select>
        ) : (
          <span className="muted">{pk || 'none'}</span>
        )}
      </td>
      <td className="fields">
        {fields.length === 0 ? (
          <span className="muted">any (no schema)</span>
        ) : (
          <details>
            <summary>
              {count} of {fields.length} fields
            </summary>
            {fields.map((f) => (
              <label key={f} className="field">
                <input
                  type="checkbox"
                  aria-label={`Field ${f} of ${name}`}
                  checked={isOn(f)}
                  disabled={needed.has(f)}
                  title={needed.has(f) ? 'the sync needs it (cursor or primary key)' : undefined}
                  onChange={(e) => setField(f, e.target.checked)}
                />{' '}
                {f}
              </label>
            ))}
          </details>
        )}
      </td>
    </tr>
  );
}
