Feature: Signing in with Microsoft Entra ID
  The custom connector signs users in and gets tokens for the case search API from the
  landscape's Entra tenant. Entra checks every credential and answers with its own error codes.

  Background:
    Given the contoso landscape is running

  Scenario: A user signs in and gets a v2 token for the cases API with the delegated scope
    When "alice@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read"
    Then "alice@contoso.onmicrosoft.com" holds an access token whose "scp" is "Cases.Read"
    And "alice@contoso.onmicrosoft.com" holds an access token whose "ver" is "2.0"
    And "alice@contoso.onmicrosoft.com" holds an access token whose "iss" is "https://login.microsoftonline.com/c76cdc05-9ef7-4021-9a9c-171dd3832ea4/v2.0"
    And "alice@contoso.onmicrosoft.com" holds an access token whose "groups" include "8f1da8ea-c517-4c5b-91b3-6952ece13786"

  Scenario: A supervisor's token carries her app role
    When "carol@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read"
    Then "carol@contoso.onmicrosoft.com" holds an access token whose "roles" include "Cases.Read.All"

  Scenario: The connector gets an app-only token for its service principal with the app role it was granted
    When the app "cases-connector" asks for a token for "api://contoso-cases/.default"
    Then "cases-connector" holds an access token whose "roles" include "Cases.Read.All"
    And "cases-connector" holds an access token whose "oid" is "edf349a2-f52f-41fc-af88-96e0b16c7b1d"

  Scenario: Key Vault tokens are v1 tokens for https://vault.azure.net
    When the app "ops-automation" asks for a token for "https://vault.azure.net/.default"
    Then "ops-automation" holds an access token whose "aud" is "https://vault.azure.net"
    And "ops-automation" holds an access token whose "ver" is "1.0"

  Scenario: A wrong password is refused
    When "alice@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read" with password "not-her-password"
    Then Entra refuses with "invalid_grant" and error code 50126

  Scenario: A disabled user cannot sign in
    Given the user "bob@contoso.onmicrosoft.com" is disabled
    When "bob@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read"
    Then Entra refuses with "invalid_grant" and error code 50057

  Scenario: A wrong client secret is refused
    When the app "cases-connector" asks for a token for "api://contoso-cases/.default" with secret "guess"
    Then Entra refuses with "invalid_client" and error code 7000215

  Scenario: A connector without consent for Key Vault cannot act for a user there
    When "alice@contoso.onmicrosoft.com" signs in through "cases-connector" for "https://vault.azure.net/user_impersonation"
    Then Entra refuses with "invalid_grant" and error code 65001
