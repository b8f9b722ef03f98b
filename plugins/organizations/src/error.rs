//! The organizations error enum and the one match from variants to HTTP.

use thub_plugin_sdk::{ApiError, FieldError};

/// What can go wrong with organizations.
#[derive(Debug, thiserror::Error)]
pub enum OrganizationsError {
    /// Invalid input.
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// No such organization, or the caller may not see it.
    #[error("organization not found")]
    NotFound,
    /// The slug is taken by an organization or a user.
    #[error("slug taken")]
    SlugTaken,
    /// Needs an owner or admin of the organization (or a site administrator).
    #[error("admin or owner required")]
    NotAdmin,
    /// Needs an owner of the organization (or a site administrator).
    #[error("owner required")]
    NotOwner,
    /// The user is already a member.
    #[error("already a member")]
    AlreadyMember,
    /// No such user.
    #[error("user not found")]
    UserNotFound,
    /// The user is not an active member.
    #[error("member not found")]
    MemberNotFound,
    /// The change would leave the organization without an owner.
    #[error("last owner")]
    LastOwner,
    /// Storage failed.
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
}

impl From<OrganizationsError> for ApiError {
    fn from(error: OrganizationsError) -> Self {
        use OrganizationsError::*;
        match error {
            Validation(errors) => ApiError::validation(errors),
            NotFound => ApiError::not_found("organizations.not_found", "Organization not found"),
            SlugTaken => ApiError::bad_request("organizations.slug_taken", "Organization slug already exists"),
            NotAdmin => ApiError::forbidden("organizations.not_admin", "Admin or owner privileges required"),
            NotOwner => ApiError::forbidden("organizations.not_owner", "Owner privileges required"),
            AlreadyMember => ApiError::bad_request("organizations.already_member", "User is already a member"),
            UserNotFound => ApiError::not_found("organizations.user_not_found", "User not found"),
            MemberNotFound => ApiError::not_found("organizations.member_not_found", "Member not found"),
            LastOwner => {
                ApiError::bad_request("organizations.last_owner", "Cannot remove the last owner from organization")
            }
            Database(error) => error.into(),
        }
    }
}

impl From<OrganizationsError> for poem::Error {
    fn from(error: OrganizationsError) -> Self {
        ApiError::from(error).into()
    }
}
