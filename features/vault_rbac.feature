Feature: Key Vault data-plane access per Azure RBAC role
  The vaults use the Azure RBAC permission model. Key Vault Secrets Officer may read and write
  secrets, Key Vault Secrets User may only read them, Key Vault Reader sees metadata but no
  values, and the control-plane Reader role grants no data-plane action at all. A refused
  request is 403 Forbidden with inner code ForbiddenByRbac and names the data action it
  lacked. contoso.yaml makes ops-automation Secrets Officer on every vault; the other grants
  below are added to contoso for one scenario (cases-api and cases-connector hold no vault role
  in the shipped file).

  Scenario: Key Vault Secrets Officer can write a secret and read it back
    Given the contoso landscape is running
    When the app "ops-automation" asks for a token for "https://vault.azure.net/.default"
    And "ops-automation" sets the secret "partner-api-key" of "kv-contoso-prod" to "pk-2026-12" from host "pp-prod-westus"
    And "ops-automation" reads the secret "partner-api-key" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the secret's value is "pk-2026-12"

  Scenario: Key Vault Secrets User can read a secret
    Given the contoso landscape is running with "cases-api" granted "Key Vault Secrets User" on "kv-contoso-prod"
    When the app "cases-api" asks for a token for "https://vault.azure.net/.default"
    And "cases-api" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the secret's value is the client secret of "cases-connector"

  Scenario: Key Vault Secrets User cannot write a secret
    Given the contoso landscape is running with "cases-api" granted "Key Vault Secrets User" on "kv-contoso-prod"
    When the app "cases-api" asks for a token for "https://vault.azure.net/.default"
    And "cases-api" sets the secret "cases-connector-secret" of "kv-contoso-prod" to "overwritten" from host "pp-prod-westus"
    Then the vault answers 403 with "ForbiddenByRbac"
    And the vault's message names the action "Microsoft.KeyVault/vaults/secrets/setSecret/action"

  Scenario: A Secrets User role on one vault grants nothing on another
    Given the contoso landscape is running with "cases-api" granted "Key Vault Secrets User" on "kv-contoso-prod"
    When the app "cases-api" asks for a token for "https://vault.azure.net/.default"
    And "cases-api" reads the secret "cases-connector-secret" of "kv-contoso-dev" from host "internet"
    Then the vault answers 403 with "ForbiddenByRbac"

  Scenario: Key Vault Reader sees no secret value
    Given the contoso landscape is running with "cases-api" granted "Key Vault Reader" on "kv-contoso-prod"
    When the app "cases-api" asks for a token for "https://vault.azure.net/.default"
    And "cases-api" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the vault answers 403 with "ForbiddenByRbac"
    And the vault's message names the action "Microsoft.KeyVault/vaults/secrets/getSecret/action"

  Scenario: The control-plane Reader role on the resource group reads no secret value
    Given the contoso landscape is running with "cases-connector" granted "Reader" on "rg-contoso"
    When the app "cases-connector" asks for a token for "https://vault.azure.net/.default"
    And "cases-connector" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the vault answers 403 with "ForbiddenByRbac"
    And the vault's message names the action "Microsoft.KeyVault/vaults/secrets/getSecret/action"
