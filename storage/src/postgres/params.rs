//! Parameters of a statement whose conditions depend on the call (the admin API's filters):
//! each value is bound, with its type, under the next `$n`.

use tokio_postgres::types::{ToSql, Type};

#[derive(Default)]
pub(super) struct Params {
    values: Vec<(Box<dyn ToSql + Sync + Send>, Type)>,
}

impl Params {
    /// Binds `value` as the next parameter. Returns its placeholder (`$n`).
    pub(super) fn bind<T: ToSql + Sync + Send + 'static>(&mut self, value: T, ty: Type) -> String {
        self.values.push((Box::new(value), ty));
        format!("${}", self.values.len())
    }

    /// The parameters for `query_typed` and `execute_typed`.
    pub(super) fn typed(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.values
            .iter()
            .map(|(value, ty)| (&**value as &(dyn ToSql + Sync), ty.clone()))
            .collect()
    }
}
