<?php
// Proof that a user is who your backend says: HMAC-SHA256 of the user id, keyed with
// your Vouch identity secret, as 64 lowercase hex characters.
// Run it on your server, never in the browser:
//   VOUCH_SECRET=sk_test_… php sign_user.php USER_ID

function sign_user_id(string $userId, string $secret): string
{
    // The key is the secret exactly as shown by Vouch; the message is the user id (UTF-8).
    return hash_hmac('sha256', $userId, $secret);
}

if (PHP_SAPI === 'cli' && realpath($argv[0]) === __FILE__) {
    $secret = getenv('VOUCH_SECRET');
    if ($secret === false || $secret === '' || $argc !== 2) {
        fwrite(STDERR, "usage: VOUCH_SECRET=sk_… php sign_user.php USER_ID\n");
        exit(2);
    }
    echo sign_user_id($argv[1], $secret), "\n";
}
