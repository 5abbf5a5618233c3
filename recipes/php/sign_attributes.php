<?php
// Proof for a user's attributes: HMAC-SHA256 over the RFC 8785 (JCS) canonical form of the
// attributes object, so that key order and spacing do not matter. Send the same object as
// `attributes` and this value as `attributes_signature`.
//   VOUCH_SECRET=sk_test_… php sign_attributes.php '{"plan":"pro","seats":5}'
require_once __DIR__ . '/jcs.php';

function sign_attributes(stdClass $attributes, string $secret): string
{
    // json_encode is NOT canonical (key order, 1.0e+21 vs 1e+21): use jcs_canonicalize.
    return hash_hmac('sha256', jcs_canonicalize($attributes), $secret);
}

if (PHP_SAPI === 'cli' && realpath($argv[0]) === __FILE__) {
    $secret = getenv('VOUCH_SECRET');
    if ($secret === false || $secret === '' || $argc !== 2) {
        fwrite(STDERR, "usage: VOUCH_SECRET=sk_… php sign_attributes.php ATTRIBUTES_JSON\n");
        exit(2);
    }
    echo sign_attributes(json_decode($argv[1], false, 512, JSON_THROW_ON_ERROR), $secret), "\n";
}
