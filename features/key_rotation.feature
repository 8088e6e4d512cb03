Feature: Entra signing-key rollover seen by the vault and the API
  Entra publishes its next signing key in the tenant's JWKS before signing with it, switches,
  and later stops publishing the previous one. The vault and the case search API fetch the
  JWKS again when a token names a key they do not know (as Microsoft.IdentityModel's
  ConfigurationManager does, at most once every 5 minutes after the first time), so a rollover
  needs no restart, and once they refetched after the retirement a token signed with the
  retired key is refused. Key Vault's refusal is AKV10046 (seen in public traces, see
  mocks/keyvault/src/auth.rs).

  Background:
    Given the contoso landscape is running

  Scenario: During a rollover the vault accepts tokens signed by the old and by the new key
    When the app "ops-automation" asks for a token for "https://vault.azure.net/.default"
    And "ops-automation" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    And "ops-automation" keeps that token as "ops-automation before the switch"
    And Entra publishes its next signing key
    And Entra switches to its next signing key
    And the app "ops-automation" asks for a token for "https://vault.azure.net/.default"
    Then "ops-automation" and "ops-automation before the switch" are signed by different keys
    When "ops-automation" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the secret's value is the client secret of "cases-connector"
    When "ops-automation before the switch" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the secret's value is the client secret of "cases-connector"

  Scenario: After the previous key is retired, the vault refuses a token signed with it
    When the app "ops-automation" asks for a token for "https://vault.azure.net/.default"
    And "ops-automation" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    And "ops-automation" keeps that token as "ops-automation before the rollover"
    And Entra publishes its next signing key
    And Entra switches to its next signing key
    And Entra retires its previous signing key
    And the app "ops-automation" asks for a token for "https://vault.azure.net/.default"
    And "ops-automation" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the secret's value is the client secret of "cases-connector"
    When "ops-automation before the rollover" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the vault refuses the token with 401 saying "AKV10046: Unable to resolve the key used for signature validation"

  Scenario: The search API follows the rollover and refuses the retired key
    When "alice@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read"
    And "alice@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "printer" from host "pp-prod-westus"
    Then the search succeeds
    When "alice@contoso.onmicrosoft.com" keeps that token as "alice before the rollover"
    And Entra publishes its next signing key
    And Entra switches to its next signing key
    And Entra retires its previous signing key
    And "alice@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read"
    Then "alice@contoso.onmicrosoft.com" and "alice before the rollover" are signed by different keys
    When "alice@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "printer" from host "pp-prod-westus"
    Then the search succeeds
    When "alice before the rollover" searches "cases-api-prod.azurewebsites.net" for "printer" from host "pp-prod-westus"
    Then the search is refused with 401 and error "invalid_token" saying "The signature key was not found"
