<?php
// Vouch test vectors, computed with PHP's hash_hmac.
//
//   php vectors/gen/php.php [inputs.json] [vectors.json]
//
// Signatures come from inputs.json. For attributes and tokens this runtime
// takes the canonical JSON and the token signing input ("header.payload")
// from vectors.json and computes the MACs itself.

$inputs = json_decode(file_get_contents($argv[1] ?? __DIR__ . '/../inputs.json'), true, 512, JSON_THROW_ON_ERROR);
$vectors = json_decode(file_get_contents($argv[2] ?? __DIR__ . '/../vectors.json'), true, 512, JSON_THROW_ON_ERROR);

// PHP strings are byte strings; json_decode yields UTF-8, which is the key
// and message encoding the contract asks for.
function encodings(string $digest): array
{
    return [
        'hex' => bin2hex($digest),
        'base64' => base64_encode($digest),
        'base64url' => rtrim(strtr(base64_encode($digest), '+/', '-_'), '='),
    ];
}

function mac(string $key, string $message): string
{
    return hash_hmac('sha256', $message, $key, true);
}

$secrets = [];
foreach ($inputs['secrets'] as $s) {
    $secrets[$s['name']] = $s['value'];
}

$signatures = [];
foreach ($inputs['secrets'] as $s) {
    foreach ($inputs['messages'] as $m) {
        $signatures[] = ['id' => $s['name'] . '/' . $m['name']] + encodings(mac($s['value'], $m['value']));
    }
}

$attributes = [];
foreach ($vectors['attributes'] as $a) {
    $attributes[] = ['id' => $a['id']] + encodings(mac($secrets[$a['secret_name']], $a['canonical']));
}

$tokens = [];
foreach ($vectors['tokens'] as $t) {
    $parts = explode('.', $t['token']);
    $signingInput = $parts[0] . '.' . $parts[1];
    $signature = encodings(mac($secrets[$t['secret_name']], $signingInput))['base64url'];
    $tokens[] = ['id' => $t['id'], 'token' => $signingInput . '.' . $signature];
}

echo json_encode([
    'runtime' => 'php ' . PHP_VERSION,
    'signatures' => $signatures,
    'attributes' => $attributes,
    'tokens' => $tokens,
], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR), "\n";
