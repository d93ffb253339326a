// An unmodified relying party built on openid-client v6 (panva), which the
// end-to-end tests drive (cmd/tonearm/i33_node_test.go). It discovers the
// issuer, builds one authorization URL (PKCE S256, state, nonce, the chosen
// response_mode; plain, as a signed request object, or pushed), serves its
// callback on 127.0.0.1 (GET for the query mode, POST for form_post),
// redeems the code with authorizationCodeGrant, checks the ID token (its
// signature too) and calls userinfo.
//
// Options are --name value pairs:
//   --issuer URL           (required)
//   --client-id ID         (required)
//   --port N               the callback listens on 127.0.0.1:N (required);
//                          redirect_uri is http://127.0.0.1:N/callback
//   --auth METHOD          none | client_secret_basic (default) |
//                          client_secret_post | private_key_jwt
//   --secret SECRET        for the client_secret_* methods
//   --key FILE --kid KID --alg ALG
//                          a PKCS#8 PEM private key, its kid and its JWS
//                          algorithm (RS256, PS256, ES256, EdDSA or Ed25519), for
//                          private_key_jwt and --request jar
//   --request MODE         plain (default) | jar (request object signed
//                          with --key) | par (pushed)
//   --response-mode MODE   query (default) | form_post
//   --scope SCOPE          default "openid profile"
//   --param name=value     an extra authorization parameter (repeatable)
//   --dpop yes             bind the tokens to a fresh ES256 key with DPoP
//                          (RFC 9449): the code exchange, userinfo and one
//                          refresh (then userinfo again) send proofs
//
// It prints one JSON line when its callback is listening:
//   {"ready": true, "authorization_url": "..."}
// and one when the callback has been answered, then exits:
//   {"ok": true, "method": "POST", "claims": {...}, "userinfo": {...},
//    "access_token": true, "id_token": true, "refresh_token": false}
//   with --dpop also "token_type", "refreshed_token_type",
//   "refreshed_userinfo", and the raw "dpop_access_token" and
//   "dpop_refresh_token" (for the test to try them without the key)
//   {"ok": false, "stage": "...", "error": "...", "error_description": "..."}
import http from 'node:http'
import { readFileSync } from 'node:fs'
import { webcrypto } from 'node:crypto'

// Debian 12's Node 18 has WebCrypto without its global, which
// openid-client uses; set it before loading the library.
globalThis.crypto ??= webcrypto
const client = await import('openid-client')

function options(argv) {
  const o = { auth: 'client_secret_basic', request: 'plain', responseMode: 'query', scope: 'openid profile', params: {} }
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase())
    const value = argv[i + 1]
    if (value === undefined) throw new Error(`--${argv[i]} needs a value`)
    if (name === 'param') {
      const eq = value.indexOf('=')
      o.params[value.slice(0, eq)] = value.slice(eq + 1)
    } else {
      o[name] = value
    }
  }
  for (const required of ['issuer', 'clientId', 'port']) {
    if (!o[required]) throw new Error(`--${required} is required`)
  }
  return o
}

// WebCrypto's names for the JWS algorithms a client key may use.
const importParams = {
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  PS256: { name: 'RSA-PSS', hash: 'SHA-256' },
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
  // An Ed25519 key: openid-client signs with it under the name "Ed25519"
  // (RFC 9864), unmodified; tonearm accepts that name as well as EdDSA.
  EdDSA: { name: 'Ed25519' },
  Ed25519: { name: 'Ed25519' },
}

async function privateKey(o) {
  if (!o.key) throw new Error('--key is required for private_key_jwt and --request jar')
  const params = importParams[o.alg || 'RS256']
  if (!params) throw new Error(`unsupported --alg ${o.alg}`)
  const pem = readFileSync(o.key, 'utf8')
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64')
  const key = await crypto.subtle.importKey('pkcs8', der, params, false, ['sign'])
  return { key, kid: o.kid }
}

async function clientAuth(o) {
  switch (o.auth) {
    case 'none':
      return client.None()
    case 'client_secret_basic':
      return client.ClientSecretBasic(o.secret)
    case 'client_secret_post':
      return client.ClientSecretPost(o.secret)
    case 'private_key_jwt':
      return client.PrivateKeyJwt(await privateKey(o))
    default:
      throw new Error(`unsupported --auth ${o.auth}`)
  }
}

async function authorizationURL(config, o, params) {
  switch (o.request) {
    case 'plain':
      return client.buildAuthorizationUrl(config, params)
    case 'jar':
      return client.buildAuthorizationUrlWithJAR(config, params, await privateKey(o))
    case 'par':
      return client.buildAuthorizationUrlWithPAR(config, params)
    default:
      throw new Error(`unsupported --request ${o.request}`)
  }
}

// The callback's request as a Fetch API Request, which
// authorizationCodeGrant reads (the query, or a form_post body).
async function fetchRequest(req, base) {
  const url = new URL(req.url, base)
  if (req.method !== 'POST') return new Request(url)
  const chunks = []
  for await (const chunk of req) chunks.push(chunk)
  return new Request(url, { method: 'POST', headers: { 'content-type': req.headers['content-type'] || '' }, body: Buffer.concat(chunks) })
}

function print(line) {
  process.stdout.write(JSON.stringify(line) + '\n')
}

function failure(stage, err) {
  return { ok: false, stage, error: err?.error || err?.code || err?.name || 'error', error_description: err?.error_description || err?.message || String(err) }
}

async function main() {
  const o = options(process.argv.slice(2))
  const redirectURI = `http://127.0.0.1:${o.port}/callback`
  const config = await client.discovery(new URL(o.issuer), o.clientId, { redirect_uris: [redirectURI] }, await clientAuth(o), {
    execute: [client.allowInsecureRequests], // the test server is http on loopback
  })
  // Check the ID token's signature against the JWKS too.
  client.enableNonRepudiationChecks(config)
  const verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const params = {
    redirect_uri: redirectURI, scope: o.scope, state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    ...(o.responseMode !== 'query' ? { response_mode: o.responseMode } : {}),
    ...o.params,
  }

  let done
  const finished = new Promise((resolve) => { done = resolve })
  const server = http.createServer(async (req, res) => {
    if (new URL(req.url, redirectURI).pathname !== '/callback') {
      res.writeHead(404).end()
      return
    }
    let outcome
    try {
      const DPoP = o.dpop === 'yes' ? client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256')) : undefined
      const tokens = await client.authorizationCodeGrant(config, await fetchRequest(req, redirectURI), {
        pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
      }, undefined, { DPoP })
      const claims = tokens.claims()
      const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP })
      outcome = { ok: true, method: req.method, claims, userinfo, access_token: !!tokens.access_token, id_token: !!tokens.id_token, refresh_token: !!tokens.refresh_token }
      if (DPoP) {
        const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP })
        Object.assign(outcome, {
          token_type: tokens.token_type, refreshed_token_type: refreshed.token_type,
          refreshed_userinfo: await client.fetchUserInfo(config, refreshed.access_token, claims.sub, { DPoP }),
          dpop_access_token: refreshed.access_token, dpop_refresh_token: refreshed.refresh_token,
        })
      }
    } catch (err) {
      outcome = { method: req.method, ...failure('callback', err) }
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end(`<!doctype html><title>rp</title><main><p id="outcome">${outcome.ok ? 'rp: signed in' : 'rp: failed'}</p></main>`)
    print(outcome)
    done()
  })
  await new Promise((resolve, reject) => server.listen(Number(o.port), '127.0.0.1', resolve).on('error', reject))
  try {
    print({ ready: true, authorization_url: (await authorizationURL(config, o, params)).href })
  } catch (err) {
    print(failure('authorization_url', err))
    server.close()
    return
  }
  const timeout = setTimeout(() => { print({ ok: false, stage: 'callback', error: 'timeout' }); done() }, 120000)
  await finished
  clearTimeout(timeout)
  server.close()
  server.closeAllConnections()
}

main().catch((err) => {
  print(failure('setup', err))
  process.exitCode = 1
})
