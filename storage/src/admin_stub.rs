//! TEMPORARY: placeholders for the admin API's store traits while the backends are written on
//! another branch. Removed when that branch is merged.

use store::{
    ApiKey, ApiKeys, AuditEntry, AuditLog, AuditQuery, AuditRecord, NewApiKey, StoreError,
    StoreFuture, TokenHash,
};
use uuid::Uuid;

fn todo<T: Send + 'static>() -> StoreFuture<'static, T> {
    Box::pin(async { Err(StoreError::Internal("admin store not written yet".into())) })
}

macro_rules! stub {
    ($t:ty) => {
        impl ApiKeys for $t {
            fn create_api_key(&self, _: NewApiKey, _: AuditEntry) -> StoreFuture<'_, ApiKey> {
                todo()
            }
            fn list_api_keys(&self) -> StoreFuture<'_, Vec<ApiKey>> {
                todo()
            }
            fn get_api_key(&self, _: Uuid) -> StoreFuture<'_, Option<ApiKey>> {
                todo()
            }
            fn find_api_key(&self, _: TokenHash) -> StoreFuture<'_, Option<ApiKey>> {
                todo()
            }
            fn revoke_api_key(
                &self,
                _: Uuid,
                _: i64,
                _: AuditEntry,
            ) -> StoreFuture<'_, Option<ApiKey>> {
                todo()
            }
            fn rotate_api_key(
                &self,
                _: Uuid,
                _: NewApiKey,
                _: AuditEntry,
            ) -> StoreFuture<'_, Option<ApiKey>> {
                todo()
            }
            fn touch_api_key(&self, _: Uuid, _: i64) -> StoreFuture<'_, ()> {
                todo()
            }
        }
        impl AuditLog for $t {
            fn record_audit(&self, _: AuditEntry) -> StoreFuture<'_, ()> {
                todo()
            }
            fn list_audit(&self, _: AuditQuery) -> StoreFuture<'_, Vec<AuditRecord>> {
                todo()
            }
            fn get_audit(&self, _: Option<Uuid>, _: Uuid) -> StoreFuture<'_, Option<AuditRecord>> {
                todo()
            }
            fn purge_audit(
                &self,
                _: Option<Uuid>,
                _: i64,
                _: u32,
                _: Option<AuditEntry>,
            ) -> StoreFuture<'_, u64> {
                todo()
            }
        }
    };
}

stub!(crate::sqlite::SqliteStore);
stub!(crate::postgres::PgStore);
