//! A token holder's role (spec section 5): the set every service shares.

crate::closed_set! {
    /// A token holder's role.
    pub enum Role {
        /// May use the admin API and receives `admin`-targeted notices.
        Admin = "admin",
        /// An ordinary user.
        User = "user",
    }
}
