//! Azure's naming and size rules for vaults and secrets.

/// Largest secret value the service stores: "25k bytes" (MicrosoftDocs `about-secrets.md`).
pub const MAX_VALUE_BYTES: usize = 25 * 1024;

/// Longest `contentType` (same source).
pub const MAX_CONTENT_TYPE_CHARS: usize = 255;

/// Most tags on one secret version: "up to 15 tags" (MicrosoftDocs `about-secrets.md`, cited by
/// hashicorp/terraform-provider-azurerm#16947 after a 16th tag failed in #16780).
pub const MAX_TAGS: usize = 15;

/// Longest tag name. The docs said 256 while the portal enforces 512
/// (MicrosoftDocs/azure-docs#117407); 512 is what the service accepts per that report
/// (UNVERIFIED beyond it).
pub const MAX_TAG_NAME_CHARS: usize = 512;

/// Longest tag value (UNVERIFIED: the hardening issue's figure; no public source states it).
pub const MAX_TAG_VALUE_CHARS: usize = 256;

/// Longest secret name.
pub const MAX_SECRET_NAME_CHARS: usize = 127;

/// Secret names follow the OpenAPI pattern `^[0-9a-zA-Z-]+$` with 1-127 characters. The docs
/// also say "starting with a letter"; the spec pattern admits a leading digit and the service's
/// own behaviour there is unverified, so the fake follows the spec.
pub fn is_valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SECRET_NAME_CHARS
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Vault names: 3-24 characters, letters, digits and '-', starting with a letter, ending with a
/// letter or digit, no "--" (ARM naming rules for `Microsoft.KeyVault/vaults`).
pub fn is_valid_vault_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=24).contains(&bytes.len())
        && bytes[0].is_ascii_alphabetic()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && !name.contains("--")
}

/// Secret versions are 32 lowercase hex characters.
pub fn is_version_id(version: &str) -> bool {
    version.len() == 32 && version.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A fresh version id.
pub fn new_version_id() -> String {
    random_uuid().simple().to_string()
}

/// A random (version 4) UUID from the thread's generator (rand's, a CSPRNG seeded by the OS):
/// no system call per id, which `Uuid::new_v4` makes without uuid's `fast-rng` feature. Version
/// ids are drawn under the vault's write lock and request ids on every request.
pub fn random_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_follow_the_spec_pattern() {
        assert!(is_valid_secret_name("livekvtestsecret-namee8553665"));
        assert!(is_valid_secret_name(&"a".repeat(127)));
        assert!(!is_valid_secret_name(&"a".repeat(128)));
        assert!(!is_valid_secret_name(""));
        assert!(!is_valid_secret_name("My_Azure_Secret"));
        assert!(!is_valid_secret_name("a.b"));
    }

    #[test]
    fn vault_names_follow_arm_rules() {
        assert!(is_valid_vault_name("kv-contoso-01"));
        assert!(!is_valid_vault_name("kv"));
        assert!(!is_valid_vault_name("1kv"));
        assert!(!is_valid_vault_name("kv-"));
        assert!(!is_valid_vault_name("kv--a"));
        assert!(!is_valid_vault_name(&"k".repeat(25)));
    }

    #[test]
    fn versions_are_32_hex() {
        let v = new_version_id();
        assert!(is_version_id(&v), "{v}");
        assert!(!is_version_id("xyz"));
    }
}
