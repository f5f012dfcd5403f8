// Jobs across connections, one job with its attempts, and the log viewer
// that follows a running attempt.

import { useEffect, useMemo, useRef, useState } from 'react';
import * as api from './api.js';
import { Link, useLoad, useInterval, ErrorNote, Loading, Status, when, ago, duration, bytes, count, Head, Failure } from './util.jsx';

/** Records and bytes a job moved, over its attempts. */
export function jobRecords(j) {
  return (j.attempts || []).reduce((t, a) => ({ records: t.records + a.records, bytes: t.bytes + a.bytes }), { records: 0, bytes: 0 });
}

export function Jobs() {
  const [status, setStatus] = useState('');
  const jobs = useLoad((s) => api.get(`/jobs?limit=200${status ? `&status=${status}` : ''}`, s), [status]);
  useInterval(jobs.reload, 5000);
  return (
    <section aria-labelledby="h-jobs">
      <h1 id="h-jobs">Jobs</h1>
      <div className="row wrap filters">
        <label>
          Status{' '}
          <select value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">any</option>
            {['pending', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
      </div>
      <ErrorNote error={jobs.error} />
      {!jobs.data ? (
        <Loading what="jobs" />
      ) : (
        <div className="scroll">
          <table className="table">
            <Head cols={['Job', 'Connection', 'Kind', 'Status', 'Created', 'Duration']} />
            <tbody>
              {jobs.data.map((j) => (
                <tr key={j.id}>
                  <td>
                    <Link to={`/jobs/${j.id}`}>{j.id}</Link>
                  </td>
                  <td>
                    <Link to={`/connections/${api.seg(j.connection)}`}>{j.connection}</Link>
                  </td>
                  <td>
                    {j.kind}
                    {j.trigger === 'scheduled' && <span className="muted"> (scheduled)</span>}
                  </td>
                  <td>
                    <Status status={j.status} />
                  </td>
                  <td title={when(j.created_at)}>{ago(j.created_at)}</td>
                  <td>{j.started_at ? duration((j.ended_at || Date.now()) - j.started_at) : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function AttemptsTable({ attempts }) {
  return (
    <table className="table">
      <Head cols={['Attempt', 'Status', 'Started', 'Duration', 'Records', 'Committed', 'Bytes', 'Failure']} />
      <tbody>
        {attempts.map((a) => (
          <tr key={a.number}>
            <td>{a.number}</td>
            <td>
              <Status status={a.status} />
            </td>
            <td>{when(a.started_at)}</td>
            <td>{duration((a.ended_at || Date.now()) - a.started_at)}</td>
            <td>{count(a.records)}</td>
            <td>{count(a.records_committed)}</td>
            <td>{bytes(a.bytes)}</td>
            <td className="failure">
              <Failure failure={a.failure} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function JobPage({ id }) {
  const job = useLoad((s) => api.get(`/jobs/${api.seg(id)}`, s), [id]);
  const j = job.data;
  const live = j && (j.status === 'running' || j.status === 'pending');
  useInterval(job.reload, live ? 2000 : 0);
  if (!j) return job.error ? <ErrorNote error={job.error} /> : <Loading what="the job" />;
  return (
    <section aria-labelledby="h-job">
      <h1 id="h-job">
        Job {j.id} <Status status={j.status} />
      </h1>
      <p className="muted">
        A {j.kind} of <Link to={`/connections/${api.seg(j.connection)}`}>{j.connection}</Link>, created {when(j.created_at)}
        {j.owner && `, run by ${j.owner}`}.
      </p>
      <AttemptsTable attempts={j.attempts} />
      <LogViewer job={j.id} live={live} attempts={j.attempts.map((a) => a.number)} />
    </section>
  );
}

/** The log of a job's attempt: followed while it runs, searched, downloaded. */
export function LogViewer({ job, live, attempts }) {
  const [attempt, setAttempt] = useState(null);
  const [text, setText] = useState('');
  const [error, setError] = useState(null);
  const [q, setQ] = useState('');
  const [following, setFollowing] = useState(false);
  const pre = useRef(null);
  const stick = useRef(true);
  useEffect(() => {
    const ctl = new AbortController();
    const query = attempt ? `&attempt=${attempt}` : '';
    setText('');
    setError(null);
    if (live) {
      setFollowing(true);
      api
        .follow(`/jobs/${job}/logs?follow=true${query}`, (chunk) => setText((t) => t + chunk), ctl.signal)
        .catch((e) => !ctl.signal.aborted && setError(e))
        .finally(() => !ctl.signal.aborted && setFollowing(false));
    } else {
      api.get(`/jobs/${job}/logs?${query.slice(1)}`, ctl.signal).then(
        (l) => setText(l.log),
        (e) => !ctl.signal.aborted && setError(e),
      );
    }
    return () => ctl.abort();
  }, [job, attempt, live]);
  useEffect(() => {
    if (stick.current && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text]);
  const shown = useMemo(() => {
    const all = text.split('\n');
    if (!q) return { lines: all, matches: null };
    const needle = q.toLowerCase();
    const lines = all.filter((l) => l.toLowerCase().includes(needle));
    return { lines, matches: lines.length };
  }, [text, q]);
  const download = () => {
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `job-${job}${attempt ? `-attempt-${attempt}` : ''}.log`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  return (
    <div className="card log" aria-labelledby="h-log">
      <div className="row spread wrap">
        <h2 id="h-log">
          Log of job {job} {following && <span className="badge running">following</span>}
        </h2>
        <div className="row wrap">
          {attempts && attempts.length > 1 && (
            <label>
              Attempt{' '}
              <select value={attempt || ''} onChange={(e) => setAttempt(e.target.value || null)}>
                <option value="">last</option>
                {attempts.map((n) => (
                  <option key={n}>{n}</option>
                ))}
              </select>
            </label>
          )}
          <label>
            Search <input type="search" value={q} onChange={(e) => setQ(e.target.value)} />
          </label>
          {shown.matches !== null && <span className="muted">{shown.matches} lines</span>}
          <button type="button" onClick={download} disabled={!text}>
            Download
          </button>
        </div>
      </div>
      <ErrorNote error={error} />
      <pre
        ref={pre}
        className="logtext"
        tabIndex={0}
        aria-label={`Log of job ${job}`}
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
        }}
      >
        {shown.lines.join('\n')}
      </pre>
    </div>
  );
}
