//! Turning SpiceDB's gRPC errors into [`AuthzError`]s.
//!
//! Transient trouble (unreachable, slow, overloaded) becomes [`AuthzError::Unavailable`], so the
//! gateway answers 503 and the caller may retry. A question SpiceDB rejects as such (a type,
//! relation or permission its schema lacks, a wrong preshared key) becomes
//! [`AuthzError::Misconfigured`] with a message that names the configuration key to look at.

use std::collections::HashMap;
use std::time::Duration;

use portcullis_api::AuthzError;
use prost::Message;
use spicedb_rs_proto::google::rpc::Status as RpcStatus;
use tonic::{Code, Status};

/// What an error message may name: the authorizer's section and the subject to keep out.
#[derive(Clone, Copy)]
pub(crate) struct ErrorContext<'a> {
    /// The section's key path, e.g. `authorizers.spicedb`.
    pub(crate) section: &'a str,
    /// The caller's raw subject id, removed from any text SpiceDB sends back.
    pub(crate) subject: Option<&'a str>,
    /// The deadline the call had, named when it passes.
    pub(crate) timeout: Duration,
}

/// `google.rpc.ErrorInfo`, which SpiceDB attaches to its errors; only the fields read here.
#[derive(Clone, PartialEq, Message)]
struct ErrorInfo {
    #[prost(string, tag = "1")]
    reason: String,
    #[prost(map = "string, string", tag = "3")]
    metadata: HashMap<String, String>,
}

const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// Classifies a failed call.
pub(crate) fn from_status(status: &Status, context: ErrorContext<'_>) -> AuthzError {
    let info = RpcStatus::decode(status.details())
        .ok()
        .and_then(|rpc| error_info(&rpc));
    classify(status.code(), status.message(), info, context)
}

/// Classifies the error of one item of a bulk check.
pub(crate) fn from_rpc_status(status: &RpcStatus, context: ErrorContext<'_>) -> AuthzError {
    classify(
        Code::from_i32(status.code),
        &status.message,
        error_info(status),
        context,
    )
}

fn error_info(status: &RpcStatus) -> Option<ErrorInfo> {
    status
        .details
        .iter()
        .find(|any| any.type_url == ERROR_INFO_TYPE)
        .and_then(|any| ErrorInfo::decode(any.value.as_slice()).ok())
}

fn classify(
    code: Code,
    message: &str,
    info: Option<ErrorInfo>,
    context: ErrorContext<'_>,
) -> AuthzError {
    let message = scrub(message, context.subject);
    let section = context.section;
    if is_deadline(code, &message) {
        let timeout = context.timeout;
        return AuthzError::Unavailable(format!("spicedb did not answer within {timeout:?}"));
    }
    match code {
        Code::InvalidArgument | Code::FailedPrecondition | Code::NotFound | Code::OutOfRange => {
            let named = info.and_then(|info| name_the_mismatch(&info, section));
            AuthzError::Misconfigured(named.unwrap_or_else(|| {
                format!(
                    "spicedb rejected the question ({}): {message}",
                    code_name(code)
                )
            }))
        }
        Code::Unauthenticated => AuthzError::Misconfigured(format!(
            "spicedb rejected the preshared key: check `{section}.preshared_key_env` or \
             `{section}.preshared_key_file`"
        )),
        Code::PermissionDenied => AuthzError::Misconfigured(format!(
            "spicedb refused the call for this preshared key: {message}"
        )),
        Code::Unimplemented => AuthzError::Misconfigured(format!(
            "spicedb does not implement the call (is it older than v1.30?): {message}"
        )),
        _ => AuthzError::Unavailable(format!(
            "spicedb call failed ({}): {message}",
            code_name(code)
        )),
    }
}

/// Whether the call's deadline passed: SpiceDB says so with `DEADLINE_EXCEEDED`, tonic's own
/// enforcement of the deadline with `CANCELLED` and this fixed message.
fn is_deadline(code: Code, message: &str) -> bool {
    code == Code::DeadlineExceeded || (code == Code::Cancelled && message == "Timeout expired")
}

/// A message for the schema mismatches SpiceDB reports with a structured reason.
fn name_the_mismatch(info: &ErrorInfo, section: &str) -> Option<String> {
    let get = |key: &str| info.metadata.get(key).map(String::as_str).unwrap_or("?");
    match info.reason.as_str() {
        "ERROR_REASON_UNKNOWN_DEFINITION" => Some(format!(
            "the SpiceDB schema has no definition `{}`: check `{section}.resource_type` and \
             `{section}.subject_type`",
            get("definition_name"),
        )),
        "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION" => Some(format!(
            "definition `{}` of the SpiceDB schema has no relation or permission `{}`: check \
             `{section}.permission`, the route's permission and `{section}.subject_relation`",
            get("definition_name"),
            get("relation_or_permission_name"),
        )),
        _ => None,
    }
}

/// `message` with every occurrence of the subject id replaced.
fn scrub(message: &str, subject: Option<&str>) -> String {
    match subject {
        Some(subject) if !subject.is_empty() && message.contains(subject) => {
            message.replace(subject, "<subject>")
        }
        _ => message.to_owned(),
    }
}

/// The gRPC code's name as written in the gRPC spec, e.g. `UNAVAILABLE`.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTEXT: ErrorContext<'static> = ErrorContext {
        section: "authorizers.main",
        subject: Some("tok-123"),
        timeout: Duration::from_millis(750),
    };

    fn with_info(code: Code, reason: &str, metadata: &[(&str, &str)]) -> Status {
        let info = ErrorInfo {
            reason: reason.to_owned(),
            metadata: metadata
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let mut rpc = RpcStatus {
            code: code as i32,
            message: "spicedb says no".to_owned(),
            details: vec![Default::default()],
        };
        rpc.details[0].type_url = ERROR_INFO_TYPE.to_owned();
        rpc.details[0].value = info.encode_to_vec();
        Status::with_details(code, "spicedb says no", rpc.encode_to_vec().into())
    }

    #[test]
    fn transient_codes_are_unavailable() {
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
        ] {
            let err = from_status(&Status::new(code, "down"), CONTEXT);
            assert!(matches!(err, AuthzError::Unavailable(_)), "{err:?}");
        }
    }

    #[test]
    fn a_passed_deadline_names_the_timeout() {
        for status in [
            Status::deadline_exceeded("late"),
            Status::cancelled("Timeout expired"),
        ] {
            let err = from_status(&status, CONTEXT);
            let expected = AuthzError::Unavailable("spicedb did not answer within 750ms".into());
            assert_eq!(err, expected);
        }
    }

    #[test]
    fn an_unknown_permission_names_the_keys_to_check() {
        let status = with_info(
            Code::FailedPrecondition,
            "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION",
            &[
                ("definition_name", "tenant"),
                ("relation_or_permission_name", "delete"),
            ],
        );
        let AuthzError::Misconfigured(message) = from_status(&status, CONTEXT) else {
            panic!("not misconfigured");
        };
        assert!(message.contains("`delete`"), "{message}");
        assert!(
            message.contains("`authorizers.main.permission`"),
            "{message}"
        );
    }

    #[test]
    fn an_unknown_definition_names_the_type_keys() {
        let status = with_info(
            Code::FailedPrecondition,
            "ERROR_REASON_UNKNOWN_DEFINITION",
            &[("definition_name", "tenat")],
        );
        let AuthzError::Misconfigured(message) = from_status(&status, CONTEXT) else {
            panic!("not misconfigured");
        };
        assert!(message.contains("`tenat`"), "{message}");
        assert!(
            message.contains("authorizers.main.resource_type"),
            "{message}"
        );
    }

    #[test]
    fn the_subject_never_reaches_a_message() {
        let status = Status::invalid_argument("object `token:tok-123` is odd");
        let err = from_status(&status, CONTEXT);
        assert!(!err.to_string().contains("tok-123"), "{err}");
        assert!(matches!(err, AuthzError::Misconfigured(_)));
    }

    #[test]
    fn a_rejected_key_is_a_misconfiguration() {
        let err = from_status(&Status::unauthenticated("invalid preshared key"), CONTEXT);
        assert!(matches!(err, AuthzError::Misconfigured(ref m) if m.contains("preshared_key")));
    }
}
