Feature: Searching cases in the signed-in user's context
  The case search API validates Entra tokens and shows each user only the cases they own or
  that belong to one of their teams; supervisors with Cases.Read.All see all of them. The prod
  API is reachable only through its private endpoint.

  Background:
    Given the contoso landscape is running

  Scenario: Alice and Bob see only their own teams' cases
    When "alice@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read"
    And "bob@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read"
    And "alice@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "outage" from host "pp-prod-westus"
    And "bob@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "outage" from host "pp-prod-westus"
    Then "alice@contoso.onmicrosoft.com" and "bob@contoso.onmicrosoft.com" see no case in common
    And every case "alice@contoso.onmicrosoft.com" sees belongs to "alice@contoso.onmicrosoft.com" or to a group of hers

  Scenario: A supervisor sees every case
    When "alice@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read"
    And "bob@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read"
    And "carol@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read"
    And "alice@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "outage" from host "pp-prod-westus"
    And "bob@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "outage" from host "pp-prod-westus"
    And "carol@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "outage" from host "pp-prod-westus"
    Then "carol@contoso.onmicrosoft.com" sees every case that "alice@contoso.onmicrosoft.com" and "bob@contoso.onmicrosoft.com" see

  Scenario: A token without the scope or the role is refused
    When the app "ops-automation" asks for a token for "api://contoso-cases/.default"
    And "ops-automation" searches "cases-api-prod.azurewebsites.net" for "outage" from host "pp-prod-westus"
    Then the search is refused with status 403

  Scenario: The prod API cannot be reached from the public internet
    When "alice@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read"
    And "alice@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "outage" from host "internet"
    Then the search does not reach the API
