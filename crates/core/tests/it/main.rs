//! Integration tests of promoml-core.

mod treeshap_fixture;
