//! Refusing text a store cannot keep where it enters: validation errors as failure answers, and
//! the token claims Herald stores (a name, a tenant, groups).

use crate::Failure;
use runtime::Claims;
use validation::{ValidationError, check_storable};

impl From<ValidationError> for Failure {
    fn from(err: ValidationError) -> Self {
        let mut failure = Failure::new(err.code, err.message);
        failure.data.field = err.field;
        failure
    }
}

/// Refuses a query string with a parameter a store could not hold (400 `INVALID_TEXT` naming
/// it): every parameter may end up in a query.
pub fn check_query(query: &str) -> Result<(), Failure> {
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        check_storable("query parameter name", &name)?;
        check_storable(&name, &value)?;
    }
    Ok(())
}

/// Refuses a token whose claims hold text the directory or the records could not store (400
/// `INVALID_TEXT` naming the claim): such a token would otherwise fail every write about its
/// user.
pub fn check_claims(claims: &Claims) -> Result<(), Failure> {
    check_storable("token claim name", &claims.name)?;
    if let Some(tenant) = &claims.tenant_id {
        check_storable("token claim tenant_id", tenant)?;
    }
    for group in &claims.groups {
        check_storable("token claim groups", group)?;
    }
    Ok(())
}
