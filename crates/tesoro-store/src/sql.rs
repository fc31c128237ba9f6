//! Statements over many rows at once (multi-row INSERTs, UPDATE … FROM (VALUES …)), written
//! the same way for both dialects.

use crate::Result;

/// Rows per multi-row INSERT. sqlx's SQLite binding slows down sharply with thousands of
/// parameters in one statement (1,000 rows × 18 columns took 0.67 s); 50 rows keep well
/// under that and still cut the round trips fifty-fold.
const ROWS_PER_INSERT: usize = 50;

/// `prefix` followed by `rows` groups of `cols` numbered placeholders, then `suffix`.
fn multi_row_insert(prefix: &str, cols: usize, rows: usize, suffix: &str) -> String {
    let mut sql = String::with_capacity(prefix.len() + suffix.len() + rows * cols * 5);
    sql.push_str(prefix);
    let mut p = 1;
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push(',');
            }
            sql.push('$');
            sql.push_str(&p.to_string());
            p += 1;
        }
        sql.push(')');
    }
    sql.push_str(suffix);
    sql
}

/// A query whose values are being bound.
pub(crate) type AnyQuery = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>;

/// Writes `rows` as `prefix (…),(…) suffix` statements of [`ROWS_PER_INSERT`] rows, `bind`
/// binding each row's `cols` values in order. Returns the rows the database says it wrote
/// (fewer than given when `suffix` skips conflicts or an UPDATE's condition fails).
///
/// The prefix may open a `VALUES` list inside another statement: both dialects name its
/// columns `column1`, `column2`, … .
pub(crate) async fn write_rows<T>(
    conn: &mut sqlx::AnyConnection,
    prefix: &str,
    cols: usize,
    suffix: &str,
    rows: &[T],
    bind: impl Fn(AnyQuery, &T) -> Result<AnyQuery>,
) -> Result<u64> {
    let mut written = 0;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = multi_row_insert(prefix, cols, chunk.len(), suffix);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            q = bind(q, row)?;
        }
        written += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(written)
}
