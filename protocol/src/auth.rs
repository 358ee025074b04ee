//! Auth request and response bodies (filled in by the auth core).
