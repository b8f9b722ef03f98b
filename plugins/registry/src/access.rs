//! Who sees and who changes an endpoint: one set of rules for every surface (by id, owner
//! pages, listings, stars), org members included.
//!
//! | visibility | sees it | changes or deletes it |
//! |---|---|---|
//! | public | everyone, logged in or not | owning user; owning organization's owners and admins; site administrators |
//! | internal | every logged-in user | same |
//! | private | owning user; owning organization's members (any role); site administrators | same |
//!
//! A suspended endpoint (or one of a suspended organization) is seen by site administrators
//! only. Discovery (`/public`, `/trending`, search) lists public endpoints only. An inactive
//! account counts as anonymous.

use std::collections::HashMap;

use thub_organizations::OrgRole;
use thub_plugin_sdk::Principal;

use crate::entity::endpoint;
use crate::model::Visibility;

/// The caller, as the rules need them: their principal (if logged in and active) and their
/// organization roles.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    /// The logged-in, active caller.
    pub principal: Option<Principal>,
    /// Their role in each organization they are an active member of.
    pub roles: HashMap<i64, OrgRole>,
}

impl Viewer {
    /// Nobody logged in.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// The caller's user id.
    pub fn user_id(&self) -> Option<i64> {
        self.principal.as_ref().map(|principal| principal.user_id)
    }

    /// Whether the caller is a site administrator.
    pub fn is_admin(&self) -> bool {
        self.principal.as_ref().is_some_and(Principal::is_admin)
    }

    /// The caller's role in `organization_id`.
    pub fn role_in(&self, organization_id: i64) -> Option<OrgRole> {
        self.roles.get(&organization_id).copied()
    }

    /// Whether the caller owns `endpoint` or belongs to its organization (full details).
    pub fn is_insider(&self, endpoint: &endpoint::Model) -> bool {
        let owns = endpoint.user_id.is_some() && endpoint.user_id == self.user_id();
        let member = endpoint.organization_id.is_some_and(|organization| self.role_in(organization).is_some());
        owns || member
    }

    /// Whether the caller may see `endpoint`. `organization_active` is false when its
    /// organization is suspended.
    pub fn can_see(&self, endpoint: &endpoint::Model, organization_active: bool) -> bool {
        if self.is_admin() {
            return true;
        }
        if !endpoint.is_active || !organization_active {
            return false;
        }
        match Visibility::parse(&endpoint.visibility) {
            Some(Visibility::Public) => true,
            Some(Visibility::Internal) => self.principal.is_some(),
            Some(Visibility::Private) => self.is_insider(endpoint),
            None => false,
        }
    }

    /// Whether the caller may change or delete `endpoint`.
    pub fn can_manage(&self, endpoint: &endpoint::Model) -> bool {
        if self.is_admin() {
            return true;
        }
        let owns = endpoint.user_id.is_some() && endpoint.user_id == self.user_id();
        let manages = endpoint
            .organization_id
            .and_then(|organization| self.role_in(organization))
            .is_some_and(OrgRole::can_manage);
        owns || manages
    }

    /// The visibilities the caller sees among `owner`'s endpoints, for listing queries:
    /// `insider` is whether the caller is that owner or a member of that organization.
    pub fn visible_kinds(&self, insider: bool) -> Vec<Visibility> {
        if self.is_admin() || insider {
            vec![Visibility::Public, Visibility::Internal, Visibility::Private]
        } else if self.principal.is_some() {
            vec![Visibility::Public, Visibility::Internal]
        } else {
            vec![Visibility::Public]
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use thub_plugin_sdk::{AuthMethod, Role};

    use super::*;

    fn endpoint(user_id: Option<i64>, organization_id: Option<i64>, visibility: Visibility) -> endpoint::Model {
        endpoint::Model {
            id: 1,
            user_id,
            organization_id,
            name: "x".to_owned(),
            slug: "xxx".to_owned(),
            description: String::new(),
            kind: "model".to_owned(),
            visibility: visibility.as_str().to_owned(),
            version: "0.1.0".to_owned(),
            readme: String::new(),
            tags: "[]".to_owned(),
            contributors: "[]".to_owned(),
            policies: "[]".to_owned(),
            connect: "[]".to_owned(),
            stars_count: 0,
            is_active: true,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn viewer(user_id: i64, role: Role, roles: &[(i64, OrgRole)]) -> Viewer {
        Viewer {
            principal: Some(Principal {
                user_id,
                username: format!("u{user_id}"),
                email: String::new(),
                role,
                is_active: true,
                method: AuthMethod::Session { session_id: String::new() },
            }),
            roles: roles.iter().copied().collect(),
        }
    }

    #[test]
    fn the_visibility_table_holds_for_users_and_organizations() {
        let anonymous = Viewer::anonymous();
        let owner = viewer(1, Role::User, &[]);
        let stranger = viewer(2, Role::User, &[]);
        let admin = viewer(3, Role::Admin, &[]);
        let member = viewer(4, Role::User, &[(10, OrgRole::Member)]);
        let org_admin = viewer(5, Role::User, &[(10, OrgRole::Admin)]);
        for (owned, org) in [(Some(1), None), (None, Some(10))] {
            let public = endpoint(owned, org, Visibility::Public);
            let internal = endpoint(owned, org, Visibility::Internal);
            let private = endpoint(owned, org, Visibility::Private);
            assert!(anonymous.can_see(&public, true));
            assert!(!anonymous.can_see(&internal, true));
            assert!(stranger.can_see(&internal, true));
            assert!(!stranger.can_see(&private, true));
            assert!(admin.can_see(&private, true));
            assert!(!stranger.can_manage(&public));
            assert!(admin.can_manage(&private));
            if org.is_some() {
                assert!(member.can_see(&private, true), "org members see private org endpoints");
                assert!(!member.can_manage(&private), "plain members do not change them");
                assert!(org_admin.can_manage(&private));
                assert!(!owner.can_see(&private, true));
            } else {
                assert!(owner.can_see(&private, true));
                assert!(owner.can_manage(&private));
                assert!(!member.can_see(&private, true));
            }
        }
        // Suspended: administrators only.
        let mut suspended = endpoint(Some(1), None, Visibility::Public);
        suspended.is_active = false;
        assert!(!owner.can_see(&suspended, true));
        assert!(admin.can_see(&suspended, true));
        assert!(!anonymous.can_see(&endpoint(None, Some(10), Visibility::Public), false));
    }
}
