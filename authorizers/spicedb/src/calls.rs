//! The three SpiceDB calls a decision makes: CheckPermission, CheckBulkPermissions and
//! LookupResources.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::try_join_all;
use portcullis_api::AuthzError;
use spicedb_rs_proto::authzed::api::v1::check_bulk_permissions_pair::Response as PairResponse;
use spicedb_rs_proto::authzed::api::v1::check_permission_response::Permissionship;
use spicedb_rs_proto::authzed::api::v1::{
    CheckBulkPermissionsRequest, CheckBulkPermissionsRequestItem, CheckPermissionRequest,
    Consistency, LookupPermissionship, LookupResourcesRequest, ObjectReference, SubjectReference,
};
use tonic::Request;

use crate::cache::Outcome;
use crate::client::Connection;
use crate::status::{self, ErrorContext};

/// The most items SpiceDB accepts in one CheckBulkPermissions request (a constant of its
/// server, not a flag).
const MAX_BULK_ITEMS: usize = 10_000;

/// A connection and the parts of every question that the configuration fixes.
#[derive(Debug)]
pub(crate) struct Spicedb {
    /// The channel to SpiceDB.
    pub(crate) connection: Connection,
    /// The section's key path, for error messages.
    pub(crate) section: String,
    /// The object type of tenants.
    pub(crate) resource_type: String,
    /// The object type of callers.
    pub(crate) subject_type: String,
    /// The relation on the caller, or empty.
    pub(crate) subject_relation: String,
    /// The consistency of every question.
    pub(crate) consistency: Consistency,
    /// The deadline sent along with each call.
    pub(crate) timeout: Duration,
}

/// What a lookup found.
#[derive(Debug)]
pub(crate) struct Found {
    /// The tenant values with an unconditional permission, in SpiceDB's order.
    pub(crate) tenants: Vec<String>,
    /// Whether the lookup stopped at its limit, so that more tenants may exist.
    pub(crate) truncated: bool,
}

impl Spicedb {
    /// CheckPermission for one tenant.
    pub(crate) async fn check(
        &self,
        subject: &str,
        tenant: &str,
        permission: &str,
    ) -> Result<Outcome, AuthzError> {
        let message = CheckPermissionRequest {
            consistency: Some(self.consistency.clone()),
            resource: Some(self.resource(tenant)),
            permission: permission.to_owned(),
            subject: Some(self.subject(subject)),
            ..Default::default()
        };
        let response = self
            .connection
            .permissions()
            .check_permission(self.request(message))
            .await
            .map_err(|err| status::from_status(&err, self.context(subject)))?;
        outcome(response.into_inner().permissionship)
    }

    /// CheckBulkPermissions for several tenants: one round trip, or one per
    /// [`MAX_BULK_ITEMS`] tenants, sent concurrently.
    pub(crate) async fn check_bulk(
        &self,
        subject: &str,
        tenants: &[String],
        permission: &str,
    ) -> Result<HashMap<String, Outcome>, AuthzError> {
        let chunks = tenants
            .chunks(MAX_BULK_ITEMS)
            .map(|chunk| self.check_bulk_chunk(subject, chunk, permission));
        let mut outcomes = HashMap::with_capacity(tenants.len());
        for answered in try_join_all(chunks).await? {
            outcomes.extend(answered);
        }
        Ok(outcomes)
    }

    async fn check_bulk_chunk(
        &self,
        subject: &str,
        tenants: &[String],
        permission: &str,
    ) -> Result<HashMap<String, Outcome>, AuthzError> {
        let items = tenants
            .iter()
            .map(|tenant| CheckBulkPermissionsRequestItem {
                resource: Some(self.resource(tenant)),
                permission: permission.to_owned(),
                subject: Some(self.subject(subject)),
                context: None,
            })
            .collect();
        let message = CheckBulkPermissionsRequest {
            consistency: Some(self.consistency.clone()),
            items,
            with_tracing: false,
        };
        let response = self
            .connection
            .permissions()
            .check_bulk_permissions(self.request(message))
            .await
            .map_err(|err| status::from_status(&err, self.context(subject)))?;

        let mut outcomes = HashMap::with_capacity(tenants.len());
        for pair in response.into_inner().pairs {
            let tenant = pair
                .request
                .and_then(|item| item.resource)
                .map(|resource| resource.object_id)
                .unwrap_or_default();
            let found = match pair.response {
                Some(PairResponse::Item(item)) => outcome(item.permissionship)?,
                Some(PairResponse::Error(err)) => {
                    return Err(status::from_rpc_status(&err, self.context(subject)));
                }
                None => return Err(unexpected("a bulk check result without an answer")),
            };
            outcomes.insert(tenant, found);
        }
        match tenants.iter().all(|tenant| outcomes.contains_key(tenant)) {
            true => Ok(outcomes),
            false => Err(unexpected("a bulk check answer that leaves a tenant out")),
        }
    }

    /// LookupResources: the tenants the subject holds `permission` on, at most `limit`.
    pub(crate) async fn lookup(
        &self,
        subject: &str,
        permission: &str,
        limit: u32,
    ) -> Result<Found, AuthzError> {
        let message = LookupResourcesRequest {
            consistency: Some(self.consistency.clone()),
            resource_object_type: self.resource_type.clone(),
            permission: permission.to_owned(),
            subject: Some(self.subject(subject)),
            optional_limit: limit,
            ..Default::default()
        };
        let fail = |err: tonic::Status| status::from_status(&err, self.context(subject));
        let mut stream = self
            .connection
            .permissions()
            .lookup_resources(self.request(message))
            .await
            .map_err(fail)?
            .into_inner();

        let mut found = Found {
            tenants: Vec::new(),
            truncated: false,
        };
        // Known limitation: the lookup reads one page of at most `limit` results and never
        // follows the cursor, because a decision must stay bounded in time and size; a subject
        // with more tenants gets the first `limit` SpiceDB returns (logged as truncated).
        let mut seen: u32 = 0;
        while let Some(item) = stream.message().await.map_err(fail)? {
            seen += 1;
            if item.permissionship == LookupPermissionship::HasPermission as i32 {
                found.tenants.push(item.resource_object_id);
            }
            if seen >= limit {
                found.truncated = true;
                break;
            }
        }
        Ok(found)
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    fn resource(&self, tenant: &str) -> ObjectReference {
        ObjectReference {
            object_type: self.resource_type.clone(),
            object_id: tenant.to_owned(),
        }
    }

    fn subject(&self, subject: &str) -> SubjectReference {
        SubjectReference {
            object: Some(ObjectReference {
                object_type: self.subject_type.clone(),
                object_id: subject.to_owned(),
            }),
            optional_relation: self.subject_relation.clone(),
        }
    }

    fn context<'a>(&'a self, subject: &'a str) -> ErrorContext<'a> {
        ErrorContext {
            section: &self.section,
            subject: Some(subject),
            timeout: self.timeout,
        }
    }
}

fn outcome(permissionship: i32) -> Result<Outcome, AuthzError> {
    match Permissionship::try_from(permissionship) {
        Ok(Permissionship::HasPermission) => Ok(Outcome::Allowed),
        Ok(Permissionship::NoPermission) => Ok(Outcome::Denied),
        Ok(Permissionship::ConditionalPermission) => Ok(Outcome::Conditional),
        Ok(Permissionship::Unspecified) | Err(_) => Err(unexpected("an unknown permissionship")),
    }
}

fn unexpected(what: &str) -> AuthzError {
    AuthzError::Unavailable(format!("spicedb sent {what}"))
}
