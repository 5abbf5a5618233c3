<?php
// Proof for a company (group): the same HMAC-SHA256 as for a user, over the company id.
//   VOUCH_SECRET=sk_test_… php sign_company.php COMPANY_ID

function sign_company_id(string $companyId, string $secret): string
{
    return hash_hmac('sha256', $companyId, $secret);
}

if (PHP_SAPI === 'cli' && realpath($argv[0]) === __FILE__) {
    $secret = getenv('VOUCH_SECRET');
    if ($secret === false || $secret === '' || $argc !== 2) {
        fwrite(STDERR, "usage: VOUCH_SECRET=sk_… php sign_company.php COMPANY_ID\n");
        exit(2);
    }
    echo sign_company_id($argv[1], $secret), "\n";
}
