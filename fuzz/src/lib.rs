//! Property checks behind the fuzz targets. Each `check` takes the raw fuzz input, runs it
//! through one part of Portcullis and panics when a property fails, so libFuzzer reports the
//! input. A refusal is always fine; what is checked is what gets through.
//!
//! - [`promql`]: the PromQL enforcer, its output parsed by promql-parser and walked here;
//! - [`logql`]: the LogQL enforcer, its output re-enforced under the same and other tenants;
//! - [`params`]: strict parsing of query strings and form bodies, and reading the tenant
//!   parameter;
//! - [`headers`]: authentication, the tenant header, and the headers that may travel upstream.

#![forbid(unsafe_code)]

pub mod headers;
pub mod logql;
pub mod params;
pub mod promql;
