Feature: Secrets in Azure Key Vault
  The connector's client secret lives in Key Vault. The test and prod vaults have public
  network access disabled and answer only through their private endpoints; access is granted
  by Azure RBAC role assignments.

  Background:
    Given the contoso landscape is running

  Scenario: The prod vault answers through its private endpoint
    When the app "ops-automation" asks for a token for "https://vault.azure.net/.default"
    And "ops-automation" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the secret's value is the client secret of "cases-connector"

  Scenario: The prod vault refuses the public internet
    When the app "ops-automation" asks for a token for "https://vault.azure.net/.default"
    And "ops-automation" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "internet"
    Then the vault answers 403 with "ForbiddenByConnection"

  Scenario: The dev vault is public and answers the internet
    When the app "ops-automation" asks for a token for "https://vault.azure.net/.default"
    And "ops-automation" reads the secret "cases-connector-secret" of "kv-contoso-dev" from host "internet"
    Then the secret's value is the client secret of "cases-connector"

  Scenario: A principal without a role on the vault is refused by RBAC
    When the app "cases-api" asks for a token for "https://vault.azure.net/.default"
    And "cases-api" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the vault answers 403 with "ForbiddenByRbac"
