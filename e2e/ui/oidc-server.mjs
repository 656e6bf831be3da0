// A real OpenID Connect provider for the sign-in test: npm
// oauth2-mock-server, on a free loopback port, signing RS256 ID tokens.
// Claims given as OIDC_CLAIM_<NAME> are added to the tokens it signs
// (with email_verified, as an organisation's provider would assert).
import { OAuth2Server } from 'oauth2-mock-server';

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
const claims = Object.fromEntries(
  Object.entries(process.env)
    .filter(([k]) => k.startsWith('OIDC_CLAIM_'))
    .map(([k, v]) => [k.slice('OIDC_CLAIM_'.length).toLowerCase(), v]),
);
server.service.on('beforeTokenSigning', (token) => {
  Object.assign(token.payload, claims);
  if (claims.email) token.payload.email_verified = true;
});
await server.start(0, '127.0.0.1');
console.log(`oidc listening on ${server.issuer.url}`);
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.stop().then(() => process.exit(0)));
}
