//! The services the other tests lean on are there and usable.

use crate::common::PgDatabase;

#[test]
fn each_test_gets_a_postgres_database_of_its_own() {
    let Some(a) = PgDatabase::create() else {
        return;
    };
    let Some(b) = PgDatabase::create() else {
        return;
    };
    assert_ne!(a.name, b.name);
    assert_eq!(a.sql("SELECT current_database()"), a.name);
    a.sql("CREATE TABLE t (id int)");
    assert_eq!(
        b.sql("SELECT count(*) FROM pg_tables WHERE tablename = 't'"),
        "0"
    );
    let name = a.name.clone();
    drop(a);
    assert_eq!(
        b.sql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
        )),
        "0"
    );
}
