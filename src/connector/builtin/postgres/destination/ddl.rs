//! The statements that shape a stream's tables: CREATE (the final table,
//! an overwrite's or a refresh's new table, append_dedup's staging table),
//! ALTER (new fields become new columns), the merge of what was staged, and
//! the swap that drops the final table and renames the new one in its
//! place; plus the catalog queries they depend on and the `Target` each
//! stream's setup leaves to the writer.
//!
//! `setup` runs before anything is loaded and never drops or replaces a
//! final table: the swap and merge statements are built here and run by
//! the writer, the swap only when the stream completes.

use super::encode::meta;
use super::plan::Plan;
use super::Columns;
use crate::connector::builtin::postgres::types::ColType;
use crate::connector::builtin::postgres::{ident, literal, Conn};
use crate::connector::builtin::{BuiltinError, BuiltinResult};
use crate::protocol::DestinationSyncMode;
use sqlx::Row;

/// The column Airbyte's CDC sources mark deleted rows with.
const CDC_DELETED: &str = "_ab_cdc_deleted_at";

/// One stream's tables as the writer knows them.
pub(super) struct Target {
    /// `COPY <load table> (<columns>) FROM STDIN`, as text and as binary.
    pub(super) copy_text: String,
    pub(super) copy_binary: String,
    /// Where rows are loaded: the final table (append), a new table
    /// (overwrite) or a staging table (append_dedup).
    pub(super) load: String,
    /// Overwrite: rows were loaded and the new table is not swapped in yet.
    pub(super) pending: bool,
    pub(super) complete: bool,
    /// append_dedup: the staging table holds rows to merge.
    pub(super) staged: bool,
    /// append_dedup: the merge statements.
    pub(super) merge_sql: Option<String>,
    /// Overwrite, refresh: the new table that replaces the final one when
    /// the stream completes.
    pub(super) swap: Option<Swap>,
}

/// A new table and the statements that swap it in for the final one.
pub(super) struct Swap {
    pub(super) new: String,
    pub(super) sql: String,
}

impl Target {
    /// Rows are copied into `load` (Airbyte's columns, then `fields`, a
    /// list each with a leading comma); `merge_sql` merges them from there;
    /// `swap` replaces the final table at the end.
    fn new(
        load: String,
        fields: &str,
        cols: &Columns,
        merge_sql: Option<String>,
        swap: Option<Swap>,
    ) -> Self {
        let meta = if cols.meta_default {
            META_NAMES_BUT_META
        } else {
            META_NAMES
        };
        Target {
            copy_text: format!("COPY {load} ({META_NAMES}{fields}) FROM STDIN"),
            copy_binary: format!("COPY {load} ({meta}{fields}) FROM STDIN (FORMAT binary)"),
            load,
            pending: false,
            complete: false,
            staged: false,
            merge_sql,
            swap,
        }
    }
}

/// The columns a table has: name -> `format_type()`.
async fn existing_columns(
    conn: &mut Conn,
    table: &str,
) -> BuiltinResult<Option<Vec<(String, String)>>> {
    let rows = sqlx::query(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
         WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(table)
    .fetch_all(&mut conn.conn)
    .await
    .map_err(|e| conn.err(&format!("cannot read the columns of {table}"), e))?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect()))
}

const META_COLUMNS: &str = "\"_airbyte_raw_id\" uuid NOT NULL, \
    \"_airbyte_extracted_at\" timestamp with time zone NOT NULL, \
    \"_airbyte_meta\" jsonb NOT NULL, \"_airbyte_generation_id\" bigint";
const META_NAMES: &str =
    "\"_airbyte_raw_id\", \"_airbyte_extracted_at\", \"_airbyte_meta\", \"_airbyte_generation_id\"";
/// The binary rows of a load table whose `_airbyte_meta` defaults to a
/// row's without changes leave that column out: the server then parses no
/// JSON for it.
const META_NAMES_BUT_META: &str =
    "\"_airbyte_raw_id\", \"_airbyte_extracted_at\", \"_airbyte_generation_id\"";

/// Makes the `_airbyte_meta` of a row without changes the default of
/// `table`, a table only this sync loads.
fn meta_default_sql(table: &str, p: &Plan) -> String {
    format!(
        "ALTER TABLE {table} ALTER COLUMN \"_airbyte_meta\" SET DEFAULT {}::jsonb",
        literal(&meta(&[], &[], p.sync_id))
    )
}

fn create_sql(table: &str, plan: &Plan, types: &[ColType]) -> String {
    let mut cols = META_COLUMNS.to_string();
    for (f, t) in plan.fields.iter().zip(types) {
        cols.push_str(&format!(", {} {}", ident(f), t.sql()));
    }
    format!("CREATE TABLE {table} ({cols})")
}

/// Whether a column of `sql_type` (`format_type()`) takes a value of `t`
/// in the binary form sluice writes for `t`.
fn takes_binary(sql_type: &str, t: ColType) -> bool {
    // A type modifier, `varchar(20)` or `timestamp(3) with time zone`,
    // applies to binary input as it does to text.
    let base = match (sql_type.find('('), sql_type.find(')')) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &sql_type[..a], &sql_type[b + 1..]),
        _ => sql_type.to_string(),
    };
    let names: &[&str] = match t {
        ColType::Text => &["character varying", "text"],
        ColType::BigInt => &["bigint"],
        ColType::Numeric => &["numeric"],
        ColType::Bool => &["boolean"],
        ColType::Date => &["date"],
        ColType::Time => &["time without time zone"],
        ColType::TimeTz => &["time with time zone"],
        ColType::Timestamp => &["timestamp without time zone"],
        ColType::TimestampTz => &["timestamp with time zone"],
        ColType::Jsonb => &["jsonb"],
    };
    names.contains(&base.as_str())
}

/// Creates or evolves a stream's tables; returns its target and columns.
pub(super) async fn setup(
    conn: &mut Conn,
    p: &Plan,
    drop_cascade: bool,
) -> BuiltinResult<(Target, Columns)> {
    let final_table = p.final_table();
    conn.execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(&p.schema)))
        .await?;
    let replaced = p.mode == DestinationSyncMode::Overwrite || p.refresh;
    if replaced && !drop_cascade {
        refuse_dependents(conn, p, &final_table).await?;
    }
    let drop_final = if drop_cascade {
        format!("DROP TABLE IF EXISTS {final_table} CASCADE")
    } else {
        format!("DROP TABLE IF EXISTS {final_table}")
    };
    let fields: String = p.fields.iter().map(|f| format!(", {}", ident(f))).collect();
    match p.mode {
        DestinationSyncMode::Overwrite => {
            let new = format!("{}.{}", ident(&p.schema), ident(&p.side_name("new")));
            // A killed run's new table is not worth keeping: start over.
            conn.execute(&format!(
                "DROP TABLE IF EXISTS {new}; {}; {}",
                create_sql(&new, p, &p.schema_types),
                meta_default_sql(&new, p)
            ))
            .await?;
            let swap = format!(
                "BEGIN; {drop_final}; \
                 ALTER TABLE {new} ALTER COLUMN \"_airbyte_meta\" DROP DEFAULT; \
                 ALTER TABLE {new} RENAME TO {}; COMMIT",
                ident(&p.table)
            );
            let cols = Columns {
                meta_default: true,
                ..Columns::created(p)
            };
            let swap = Some(Swap {
                new: new.clone(),
                sql: swap,
            });
            Ok((Target::new(new, &fields, &cols, None, swap), cols))
        }
        DestinationSyncMode::AppendDedup if p.refresh => {
            let new = format!("{}.{}", ident(&p.schema), ident(&p.side_name("new")));
            let stage = ident(&p.side_name("stage"));
            let (index, new_index) = (p.side_name("pk"), p.side_name("newpk"));
            conn.execute(&format!(
                "DROP TABLE IF EXISTS {new}; {}; CREATE INDEX {} ON {new} ({}); \
                 CREATE TEMP TABLE {stage} (LIKE {new}); {}",
                create_sql(&new, p, &p.schema_types),
                ident(&new_index),
                primary_key_list(p),
                meta_default_sql(&stage, p)
            ))
            .await?;
            // The old table's index goes with it; the new one takes its name.
            let swap = format!(
                "BEGIN; {drop_final}; ALTER TABLE {new} RENAME TO {}; \
                 ALTER INDEX {}.{} RENAME TO {}; COMMIT",
                ident(&p.table),
                ident(&p.schema),
                ident(&new_index),
                ident(&index)
            );
            let merge = merge_sql(p, &new, &stage);
            let cols = Columns {
                meta_default: true,
                ..Columns::created(p)
            };
            let swap = Some(Swap { new, sql: swap });
            Ok((Target::new(stage, &fields, &cols, Some(merge), swap), cols))
        }
        _ => {
            let mut cols = match existing_columns(conn, &final_table).await? {
                None => {
                    conn.execute(&create_sql(&final_table, p, &p.schema_types))
                        .await?;
                    Columns::created(p)
                }
                Some(existing) => {
                    let sql_type = |name: &str| {
                        existing
                            .iter()
                            .find(|(n, _)| n == name)
                            .map(|(_, t)| t.as_str())
                    };
                    let mut binary = [
                        ("_airbyte_raw_id", "uuid"),
                        ("_airbyte_extracted_at", "timestamp with time zone"),
                        ("_airbyte_meta", "jsonb"),
                        ("_airbyte_generation_id", "bigint"),
                    ]
                    .iter()
                    .all(|(name, t)| sql_type(name) == Some(*t));
                    // Schema evolution: new fields become new columns; a
                    // column already there keeps its type.
                    let mut types = Vec::new();
                    for (f, t) in p.fields.iter().zip(&p.schema_types) {
                        match sql_type(stored_name(f)) {
                            Some(sql_type) => {
                                let t = ColType::from_sql(sql_type);
                                binary &= takes_binary(sql_type, t);
                                types.push(t);
                            }
                            None => {
                                conn.execute(&format!(
                                    "ALTER TABLE {final_table} ADD COLUMN {} {}",
                                    ident(f),
                                    t.sql()
                                ))
                                .await?;
                                types.push(*t);
                            }
                        }
                    }
                    Columns {
                        types,
                        binary,
                        meta_default: false,
                    }
                }
            };
            if p.mode == DestinationSyncMode::Append {
                return Ok((Target::new(final_table, &fields, &cols, None, None), cols));
            }
            let stage = ident(&p.side_name("stage"));
            conn.execute(&format!(
                "CREATE INDEX IF NOT EXISTS {} ON {final_table} ({}); \
                 CREATE TEMP TABLE {stage} (LIKE {final_table}); {}",
                ident(&p.side_name("pk")),
                primary_key_list(p),
                meta_default_sql(&stage, p)
            ))
            .await?;
            cols.meta_default = true;
            let merge = merge_sql(p, &final_table, &stage);
            Ok((Target::new(stage, &fields, &cols, Some(merge), None), cols))
        }
    }
}

/// Fails, before anything is loaded, when views or foreign keys depend on
/// a table this sync will replace: dropping it at the end would fail.
async fn refuse_dependents(conn: &mut Conn, p: &Plan, table: &str) -> BuiltinResult<()> {
    let dependents: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT format('view %s', v.oid::regclass) FROM pg_depend d \
           JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class \
         WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = to_regclass($1) \
           AND v.oid <> d.refobjid \
         UNION SELECT format('foreign key %I of %s', c.conname, c.conrelid::regclass) \
         FROM pg_constraint c WHERE c.contype = 'f' AND c.confrelid = to_regclass($1) \
           AND c.conrelid <> c.confrelid \
         ORDER BY 1",
    )
    .bind(table)
    .fetch_all(&mut conn.conn)
    .await
    .map_err(|e| conn.err("cannot look for what depends on the table", e))?;
    if dependents.is_empty() {
        return Ok(());
    }
    let (depend, them) = if dependents.len() == 1 {
        ("depends", "it")
    } else {
        ("depend", "them")
    };
    Err(BuiltinError::config(format!(
        "stream `{}`: {table} is replaced at the end of this sync, but {} {depend} on it. \
         Drop {them} first, or set \"drop_cascade\": true in the destination config to drop \
         {them} with the table.",
        p.name,
        dependents.join(", "),
    )))
}

/// The primary key's columns, quoted, for an index.
fn primary_key_list(p: &Plan) -> String {
    let pk: Vec<String> = p.primary_key.iter().map(|k| ident(k)).collect();
    pk.join(", ")
}

/// A name as PostgreSQL stores it: cut to 63 bytes on a character
/// boundary, as it does (with a notice) for longer identifiers.
fn stored_name(name: &str) -> &str {
    const MAX: usize = 63;
    if name.len() <= MAX {
        return name;
    }
    let mut end = MAX;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The statements that merge a staging table into the final one: per
/// key, the staged row with the newest cursor (the later one on a tie)
/// replaces the final row unless that has a newer cursor; deleted rows
/// are removed.
fn merge_sql(p: &Plan, final_table: &str, stage: &str) -> String {
    let pk: Vec<String> = p.primary_key.iter().map(|k| ident(k)).collect();
    let on = |a: &str, b: &str| -> String {
        pk.iter()
            .map(|k| format!("{a}.{k} = {b}.{k}"))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let newest = "_sluice_newest";
    let mut order = pk.join(", ");
    if let Some(c) = &p.cursor {
        order.push_str(&format!(", {} DESC NULLS LAST", ident(c)));
    }
    order.push_str(", ctid DESC");
    let mut sql = format!(
        "CREATE TEMP TABLE {newest} ON COMMIT DROP AS \
         SELECT DISTINCT ON ({}) * FROM {stage} ORDER BY {order};",
        pk.join(", ")
    );
    if let Some(c) = &p.cursor {
        sql.push_str(&format!(
            " DELETE FROM {newest} n USING {final_table} f WHERE {} AND f.{c} > n.{c};",
            on("n", "f"),
            c = ident(c)
        ));
    }
    sql.push_str(&format!(
        " DELETE FROM {final_table} f USING {newest} n WHERE {};",
        on("f", "n")
    ));
    let deleted = if p.fields.iter().any(|f| f == CDC_DELETED) {
        format!(" WHERE {} IS NULL", ident(CDC_DELETED))
    } else {
        String::new()
    };
    sql.push_str(&format!(
        " INSERT INTO {final_table} SELECT * FROM {newest}{deleted}; TRUNCATE {stage}; DROP TABLE {newest};"
    ));
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_as_postgres_cuts_them() {
        assert_eq!(stored_name("short"), "short");
        let long = "é".repeat(40);
        assert_eq!(stored_name(&long), "é".repeat(31));
        assert_eq!(stored_name(&"a".repeat(70)).len(), 63);
    }
}
