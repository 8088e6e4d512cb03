Feature: Secret expiry and disabled secrets in Key Vault
  A secret version may carry an expiry date (`exp`). Key Vault stores and shows it, but a get
  after it still answers 200 with the value: the docs ("About secrets", secret attributes) say
  an expired secret's value should not be retrievable and clients expect 403 SecretExpired,
  yet a get observed against Azure returned 200 (Azure/AzureKeyVault#19, one public report:
  UNVERIFIED beyond it; the same behaviour in
  mocks/keyvault/src/store.rs `get`). Enforcing expiry is left to clients and Azure Policy. A
  disabled version is refused with 403 SecretDisabled ("Operation get is not allowed on a
  disabled secret.": UNVERIFIED wording, emulator code only, per ppvnet's Key Vault reference).

  Background:
    Given the contoso landscape is running
    And the app "ops-automation" asks for a token for "https://vault.azure.net/.default"

  Scenario: A secret past its expiry date is still served, with its expiry visible
    When "ops-automation" sets the secret "partner-api-key" of "kv-contoso-prod" to "pk-2026-12" expiring in 30 minutes from host "pp-prod-westus"
    And the clock advances by 50 minutes
    And "ops-automation" reads the secret "partner-api-key" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the secret's value is "pk-2026-12"
    And the secret's expiry date has passed

  Scenario: A disabled secret is refused with SecretDisabled
    When "ops-automation" sets the secret "partner-api-key" of "kv-contoso-prod" to "pk-2026-12" expiring in 30 minutes from host "pp-prod-westus"
    And "ops-automation" disables the secret "partner-api-key" of "kv-contoso-prod" from host "pp-prod-westus"
    And "ops-automation" reads the secret "partner-api-key" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the vault answers 403 with "SecretDisabled"

  Scenario: A new version replaces an expired one
    When "ops-automation" sets the secret "partner-api-key" of "kv-contoso-prod" to "pk-2026-12" expiring in 30 minutes from host "pp-prod-westus"
    And the clock advances by 50 minutes
    And the app "ops-automation" asks for a token for "https://vault.azure.net/.default"
    And "ops-automation" sets the secret "partner-api-key" of "kv-contoso-prod" to "pk-2027-01" from host "pp-prod-westus"
    And "ops-automation" reads the secret "partner-api-key" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the secret's value is "pk-2027-01"
