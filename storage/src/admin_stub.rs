//! TEMPORARY: placeholders for the admin API's store traits while the backends are written on
//! another branch. Removed when that branch is merged.

use store::{
    AdminAccount, AdminChanges, AdminLogin, AdminRefresh, AdminTotp, Admins, AuditEntry, NewAdmin,
    StoreError, StoreFuture, TokenHash,
};
use uuid::Uuid;

fn todo<T: Send + 'static>() -> StoreFuture<'static, T> {
    Box::pin(async { Err(StoreError::Internal("admin store not written yet".into())) })
}

macro_rules! stub {
    ($t:ty) => {
        impl Admins for $t {
            fn create_admin(&self, _: NewAdmin, _: AuditEntry) -> StoreFuture<'_, AdminAccount> {
                todo()
            }
            fn list_admins(&self) -> StoreFuture<'_, Vec<AdminAccount>> {
                todo()
            }
            fn get_admin(&self, _: Uuid) -> StoreFuture<'_, Option<AdminAccount>> {
                todo()
            }
            fn find_admin_login(&self, _: &str) -> StoreFuture<'_, Option<AdminLogin>> {
                todo()
            }
            fn update_admin(
                &self,
                _: Uuid,
                _: AdminChanges,
                _: i64,
                _: AuditEntry,
            ) -> StoreFuture<'_, Option<AdminAccount>> {
                todo()
            }
            fn delete_admin(&self, _: Uuid, _: AuditEntry) -> StoreFuture<'_, bool> {
                todo()
            }
            fn set_admin_disabled(
                &self,
                _: Uuid,
                _: bool,
                _: i64,
                _: AuditEntry,
            ) -> StoreFuture<'_, Option<AdminAccount>> {
                todo()
            }
            fn touch_admin(&self, _: Uuid, _: i64) -> StoreFuture<'_, ()> {
                todo()
            }
            fn insert_admin_refresh(
                &self,
                _: TokenHash,
                _: Uuid,
                _: i64,
                _: i64,
                _: AuditEntry,
            ) -> StoreFuture<'_, ()> {
                todo()
            }
            fn rotate_admin_refresh(
                &self,
                _: TokenHash,
                _: TokenHash,
                _: i64,
                _: i64,
            ) -> StoreFuture<'_, AdminRefresh> {
                todo()
            }
            fn revoke_admin_refresh(&self, _: TokenHash, _: i64) -> StoreFuture<'_, bool> {
                todo()
            }
            fn find_admin_totp(&self, _: Uuid) -> StoreFuture<'_, Option<AdminTotp>> {
                todo()
            }
            fn put_admin_totp(&self, _: Uuid, _: Vec<u8>, _: i64) -> StoreFuture<'_, ()> {
                todo()
            }
            fn use_admin_totp(
                &self,
                _: Uuid,
                _: i64,
                _: i64,
                _: Option<AuditEntry>,
            ) -> StoreFuture<'_, bool> {
                todo()
            }
            fn delete_admin_totp(&self, _: Uuid, _: AuditEntry) -> StoreFuture<'_, bool> {
                todo()
            }
        }
    };
}

stub!(crate::sqlite::SqliteStore);
stub!(crate::postgres::PgStore);
