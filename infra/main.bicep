// Gradebot on Azure: Linux App Service (Python 3.11), Azure Bot (SingleTenant, Teams channel), PostgreSQL flexible
// server with database `gradebot`, and a Key Vault holding the secrets the app settings reference.
// Deploy: az deployment group create --resource-group <rg> --template-file infra/main.bicep --parameters ...
// (step by step in infra/README.md). Scope: one resource group.

targetScope = 'resourceGroup'

@description('Short lowercase prefix for resource names (letters and digits, 3-12 characters).')
@minLength(3)
@maxLength(12)
param baseName string = 'gradebot'

@description('Azure region for the App Service, database and Key Vault (the Azure Bot itself is global).')
param location string = resourceGroup().location

@description('Application (client) id of Gradebot\'s single-tenant Entra app registration; also the bot\'s id.')
@minLength(36)
@maxLength(36)
param botAppId string

@description('Client secret of that app registration. Stored only in Key Vault.')
@secure()
param botAppPassword string

@description('Directory (tenant) id the app registration lives in; defaults to this deployment\'s tenant.')
param botTenantId string = tenant().tenantId

@description('Key that encrypts the per-teacher token cache at rest: 32 random bytes, url-safe base64.')
@secure()
param tokenEncryptionKey string

@description('Administrator login name for the PostgreSQL server.')
param postgresAdminLogin string = 'gradebotadmin'

@description('Administrator password for the PostgreSQL server (8-128 characters, three character classes).')
@secure()
@minLength(8)
param postgresAdminPassword string

@description('PostgreSQL major version.')
@allowed([
  '15'
  '16'
])
param postgresVersion string = '16'

@description('PostgreSQL compute size; Burstable B1ms is enough for a school, GeneralPurpose for a district.')
param postgresSkuName string = 'Standard_B1ms'

@description('PostgreSQL compute tier matching postgresSkuName.')
@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param postgresSkuTier string = 'Burstable'

@description('App Service plan size. Basic (B1) or higher is needed for Always On.')
@allowed([
  'B1'
  'B2'
  'B3'
  'S1'
  'S2'
  'P0v3'
  'P1v3'
])
param appServiceSku string = 'B1'

@description('How many app instances run behind the load balancer; they share the PostgreSQL database.')
@minValue(1)
@maxValue(10)
param instanceCount int = 1

@description('Azure Bot pricing tier: F0 (free, standard channels such as Teams are free anyway) or S1.')
@allowed([
  'F0'
  'S1'
])
param botSku string = 'F0'

@description('Public host name teachers\' Teams clients reach; empty = the App Service default <app>.azurewebsites.net.')
param customHostName string = ''

@description('Microsoft Graph base URL Gradebot calls.')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('How reminders read assignments while teachers are away: delegated (each teacher\'s cached sign-in) or application (needs the optional application permissions with admin consent).')
@allowed([
  'delegated'
  'application'
])
param reminderDataAccess string = 'delegated'

var suffix = uniqueString(resourceGroup().id, baseName)
var prefix = toLower(baseName) // several of these names must be lowercase
var appName = '${prefix}-${suffix}'
var keyVaultName = 'kv${take(prefix, 9)}${take(suffix, 10)}'
var postgresServerName = '${prefix}-pg-${suffix}'
var databaseName = 'gradebot'
var appHost = empty(customHostName) ? '${appName}.azurewebsites.net' : customHostName
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6' // built-in role "Key Vault Secrets User"

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${prefix}-plan-${suffix}'
  location: location
  kind: 'linux'
  sku: {
    name: appServiceSku
    capacity: instanceCount
  }
  properties: {
    reserved: true // Linux
  }
}

resource postgres 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: postgresServerName
  location: location
  sku: {
    name: postgresSkuName
    tier: postgresSkuTier
  }
  properties: {
    version: postgresVersion
    administratorLogin: postgresAdminLogin
    administratorLoginPassword: postgresAdminPassword
    authConfig: {
      activeDirectoryAuth: 'Disabled'
      passwordAuth: 'Enabled'
    }
    storage: {
      storageSizeGB: 32
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: {
      mode: 'Disabled'
    }
    network: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: postgres
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
}

// 0.0.0.0-0.0.0.0 is Azure's convention for "allow connections from Azure services" (the App Service outbound IPs).
resource allowAzureServices 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: postgres
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

// Key Vault secret names allow letters, digits and dashes only.
resource appPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'MicrosoftAppPassword'
  properties: {
    value: botAppPassword
  }
}

resource tokenKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'TokenEncryptionKey'
  properties: {
    value: tokenEncryptionKey
  }
}

// The connection string carries the database password, so it lives in Key Vault too.
resource databaseUrlSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'DatabaseUrl'
  properties: {
    value: 'postgresql://${uriComponent(postgresAdminLogin)}:${uriComponent(postgresAdminPassword)}@${postgres.properties.fullyQualifiedDomainName}:5432/${database.name}?sslmode=require'
  }
}

// Gradebot's own settings (bot/settings.py reads exactly these names).
var gradebotSettings = [
  {
    name: 'MicrosoftAppId'
    value: botAppId
  }
  {
    name: 'MicrosoftAppPassword'
    value: '@Microsoft.KeyVault(SecretUri=${appPasswordSecret.properties.secretUri})'
  }
  {
    name: 'MicrosoftAppType'
    value: 'SingleTenant'
  }
  {
    name: 'MicrosoftAppTenantId'
    value: botTenantId
  }
  {
    name: 'GRAPH_BASE_URL'
    value: graphBaseUrl
  }
  {
    name: 'DATABASE_URL'
    value: '@Microsoft.KeyVault(SecretUri=${databaseUrlSecret.properties.secretUri})'
  }
  {
    name: 'TOKEN_ENCRYPTION_KEY'
    value: '@Microsoft.KeyVault(SecretUri=${tokenKeySecret.properties.secretUri})'
  }
  {
    name: 'PUBLIC_BASE_URL'
    value: 'https://${appHost}'
  }
  {
    name: 'PORT'
    value: '8000'
  }
  {
    name: 'REMINDER_DATA_ACCESS'
    value: reminderDataAccess
  }
  {
    // Graph allows 350 requests per 10 s per app per tenant, shared by every instance: each keeps its own share.
    name: 'GRAPH_REQUEST_BUDGET'
    value: string(320 / instanceCount)
  }
]

// What App Service itself needs: listen on the container's interface (Gradebot defaults to 127.0.0.1, which the
// platform's front end cannot reach), and install the Python dependencies when code is zip-deployed.
var hostingSettings = [
  {
    name: 'HOST'
    value: '0.0.0.0'
  }
  {
    name: 'SCM_DO_BUILD_DURING_DEPLOYMENT'
    value: 'true'
  }
]

resource app 'Microsoft.Web/sites@2023-12-01' = {
  name: appName
  location: location
  kind: 'app,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false // instances are stateless; everything shared lives in PostgreSQL
    keyVaultReferenceIdentity: 'SystemAssigned'
    siteConfig: {
      linuxFxVersion: 'PYTHON|3.11'
      appCommandLine: 'python app.py'
      alwaysOn: true // the reminder loop must keep running between requests
      healthCheckPath: '/healthz'
      http20Enabled: true
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: concat(gradebotSettings, hostingSettings)
    }
  }
}

// Lets the app's managed identity read the three secrets its settings reference.
resource appReadsSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, app.id, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: '${prefix}-bot-${suffix}'
  location: 'global'
  kind: 'azurebot'
  sku: {
    name: botSku
  }
  properties: {
    displayName: 'Gradebot'
    description: 'Grade class work in Microsoft Teams.'
    endpoint: 'https://${appHost}/api/messages'
    msaAppId: botAppId
    msaAppTenantId: botTenantId
    msaAppType: 'SingleTenant' // new MultiTenant bots cannot be created since 2025-07-31
  }
}

resource teamsChannel 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
      enableCalling: false
    }
  }
}

@description('Messaging endpoint registered on the Azure Bot.')
output BOT_ENDPOINT string = 'https://${appHost}/api/messages'

@description('Public host name of the app: pass it to python -m manifest build --domain.')
output BOT_DOMAIN string = appHost

@description('Resource id of the App Service, for zip deployment.')
output BOT_AZURE_APP_SERVICE_RESOURCE_ID string = app.id

@description('Name of the App Service (az webapp commands).')
output APP_SERVICE_NAME string = app.name

@description('Name of the Key Vault holding the secrets.')
output KEY_VAULT_NAME string = vault.name

@description('Name of the PostgreSQL flexible server.')
output POSTGRES_SERVER_NAME string = postgres.name

@description('Name of the Azure Bot resource.')
output BOT_RESOURCE_NAME string = bot.name
