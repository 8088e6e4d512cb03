Feature: Token lifetimes and clock shift
  Entra's access tokens live 60 to 90 minutes. The vault and the case search API check `exp`
  (with ASP.NET's 5 minutes of clock skew) against the landscape's shared clock, so moving
  that clock past a token's expiry makes both refuse it with their own 401, and a token
  fetched afterwards works again. The refusal texts are the validator's ASP.NET-style
  descriptions: no Key Vault wording for an expired token is published (UNVERIFIED, see
  mocks/keyvault/src/auth.rs `rejection_message`).

  Background:
    Given the contoso landscape is running

  Scenario: A vault token accepted now is refused once the clock passes its expiry
    When the app "ops-automation" asks for a token for "https://vault.azure.net/.default"
    And "ops-automation" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the secret's value is the client secret of "cases-connector"
    When the clock advances by 100 minutes
    And "ops-automation" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the vault refuses the token with 401 saying "The token expired at"

  Scenario: A fresh vault token works again after the clock moved
    When the app "ops-automation" asks for a token for "https://vault.azure.net/.default"
    And the clock advances by 100 minutes
    And the app "ops-automation" asks for a token for "https://vault.azure.net/.default"
    And "ops-automation" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the secret's value is the client secret of "cases-connector"

  Scenario: A token still inside its lifetime is accepted after the clock moved a little
    When the app "ops-automation" asks for a token for "https://vault.azure.net/.default"
    And the clock advances by 30 minutes
    And "ops-automation" reads the secret "cases-connector-secret" of "kv-contoso-prod" from host "pp-prod-westus"
    Then the secret's value is the client secret of "cases-connector"

  Scenario: The search API refuses an expired user token with invalid_token, and a new sign-in works
    When "alice@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read"
    And "alice@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "printer" from host "pp-prod-westus"
    Then the search succeeds
    When the clock advances by 100 minutes
    And "alice@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "printer" from host "pp-prod-westus"
    Then the search is refused with 401 and error "invalid_token" saying "The token expired at"
    When "alice@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read"
    And "alice@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "printer" from host "pp-prod-westus"
    Then the search succeeds
