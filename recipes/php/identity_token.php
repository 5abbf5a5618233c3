<?php
// An identity token: a short-lived HS256 JWT whose `sub` is the user id, signed with your
// identity secret. Unlike a signature it expires, and it can carry verified attributes.
//   VOUCH_SECRET=sk_test_… [VOUCH_KEY_ID=key_…] php identity_token.php USER_ID ['{"plan":"pro"}']
//
// With the firebase/php-jwt package this is JWT::encode($claims, $secret, 'HS256', $keyId).
// Packagist cannot be reached where these recipes are tested, so this file builds the same
// token with PHP's standard library: an HS256 JWT is only two lines of base64url and an HMAC.

function base64url(string $bytes): string
{
    return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
}

function identity_token(string $userId, string $secret, ?stdClass $attributes = null,
                        ?string $keyId = null, int $ttlSeconds = 600): string
{
    $header = ['alg' => 'HS256', 'typ' => 'JWT'];
    if ($keyId !== null && $keyId !== '') {
        $header['kid'] = $keyId; // the id of the secret (key_…), so Vouch tries only that one
    }
    $now = time();
    $claims = ['sub' => $userId, 'iat' => $now, 'exp' => $now + $ttlSeconds];
    if ($attributes !== null) {
        $claims['attributes'] = $attributes;
    }
    $flags = JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR;
    $signingInput = base64url(json_encode($header, $flags)) . '.' . base64url(json_encode($claims, $flags));
    return $signingInput . '.' . base64url(hash_hmac('sha256', $signingInput, $secret, true));
}

if (PHP_SAPI === 'cli' && realpath($argv[0]) === __FILE__) {
    $secret = getenv('VOUCH_SECRET');
    if ($secret === false || $secret === '' || $argc < 2 || $argc > 3) {
        fwrite(STDERR, "usage: VOUCH_SECRET=sk_… [VOUCH_KEY_ID=key_…] php identity_token.php USER_ID [ATTRIBUTES_JSON]\n");
        exit(2);
    }
    $attributes = $argc === 3 ? json_decode($argv[2], false, 512, JSON_THROW_ON_ERROR) : null;
    $keyId = getenv('VOUCH_KEY_ID');
    echo identity_token($argv[1], $secret, $attributes, $keyId === false ? null : $keyId), "\n";
}
