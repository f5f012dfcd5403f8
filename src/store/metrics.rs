//! Figures over the whole store, for the daemon's `/metrics`: counted by
//! the database, so a scrape costs a few aggregate queries however many
//! jobs there are.

use super::{query_err, Result, Store};

/// Totals of one connection's attempts.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConnectionTotals {
    pub connection: String,
    pub records: i64,
    pub bytes: i64,
    pub records_committed: i64,
}

/// Everything `/metrics` reports from the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Jobs by status (`pending`, `running`, ...).
    pub jobs: Vec<(String, i64)>,
    pub connections: Vec<ConnectionTotals>,
    /// How many ended attempts took at most each bound, in milliseconds
    /// (cumulative, as a Prometheus histogram), their count and their sum.
    pub attempt_buckets: Vec<(i64, i64)>,
    pub attempts: i64,
    pub attempt_ms: i64,
}

impl Store {
    /// The figures, with attempt durations counted under `bounds_ms`.
    pub async fn figures(&self, bounds_ms: &[i64]) -> Result<Figures> {
        let jobs: Vec<(String, i64)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status")
                .fetch_all(pool)
                .await
                .map_err(query_err("count jobs"))?
        });
        let connections: Vec<ConnectionTotals> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT c.name AS connection, \
                        CAST(COALESCE(SUM(a.records), 0) AS BIGINT) AS records, \
                        CAST(COALESCE(SUM(a.bytes), 0) AS BIGINT) AS bytes, \
                        CAST(COALESCE(SUM(a.records_committed), 0) AS BIGINT) AS records_committed \
                 FROM connections c \
                 LEFT JOIN jobs j ON j.connection_id = c.id \
                 LEFT JOIN attempts a ON a.job_id = j.id \
                 GROUP BY c.name ORDER BY c.name",
            )
            .fetch_all(pool)
            .await
            .map_err(query_err("sum records per connection"))?
        });
        // One pass: a count per bound, then the total and the sum.
        let mut sql = String::from("SELECT ");
        for (i, b) in bounds_ms.iter().enumerate() {
            sql.push_str(&format!(
                "CAST(COALESCE(SUM(CASE WHEN ended_at - started_at <= {b} THEN 1 ELSE 0 END), 0) AS BIGINT) AS b{i}, "
            ));
        }
        sql.push_str(
            "CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(ended_at - started_at), 0) AS BIGINT) AS total \
             FROM attempts WHERE ended_at IS NOT NULL",
        );
        let counts: Vec<i64> = on_pool!(self, pool => {
            let row = sqlx::query(&sql)
                .fetch_one(pool)
                .await
                .map_err(query_err("count attempt durations"))?;
            (0..bounds_ms.len() + 2)
                .map(|i| sqlx::Row::try_get::<i64, _>(&row, i))
                .collect::<std::result::Result<Vec<i64>, _>>()
                .map_err(query_err("read attempt durations"))?
        });
        let n = bounds_ms.len();
        Ok(Figures {
            jobs,
            connections,
            attempt_buckets: bounds_ms
                .iter()
                .copied()
                .zip(counts[..n].iter().copied())
                .collect(),
            attempts: counts[n],
            attempt_ms: counts[n + 1],
        })
    }
}
