<?php
// RFC 8785 JSON Canonicalization Scheme (JCS) for values from json_decode($json) — decode
// WITHOUT `true`, so that {} (an object) and [] (a list) stay different.
// No maintained JCS package could be installed where these recipes are tested, so this is
// a small, complete implementation, checked against the shared test vectors.
//
//   jcs_canonicalize(json_decode('{"b":1,"a":[1.0,"x"]}'))  // '{"a":[1,"x"],"b":1}'

function jcs_canonicalize($value): string
{
    if ($value instanceof stdClass) {
        $members = [];
        foreach (get_object_vars($value) as $key => $v) {
            $members[] = [(string) $key, $v]; // PHP turns "10" into the integer key 10
        }
        // Keys sorted by their UTF-16 code units, as JavaScript sorts strings.
        usort($members, fn ($a, $b) => strcmp(iconv('UTF-8', 'UTF-16BE', $a[0]), iconv('UTF-8', 'UTF-16BE', $b[0])));
        $parts = array_map(fn ($m) => jcs_string($m[0]) . ':' . jcs_canonicalize($m[1]), $members);
        return '{' . implode(',', $parts) . '}';
    }
    if (is_array($value)) {
        return '[' . implode(',', array_map('jcs_canonicalize', $value)) . ']';
    }
    if (is_string($value)) {
        return jcs_string($value);
    }
    if (is_int($value)) {
        if (abs($value) > 9007199254740991) {
            throw new InvalidArgumentException("integer $value is beyond ±(2^53-1)");
        }
        return (string) $value;
    }
    if (is_float($value)) {
        return jcs_number($value);
    }
    if (is_bool($value)) {
        return $value ? 'true' : 'false';
    }
    if ($value === null) {
        return 'null';
    }
    throw new InvalidArgumentException('cannot canonicalize ' . gettype($value));
}

function jcs_string(string $s): string
{
    // Escapes only ", \ and control characters (\b \f \n \r \t, else \u00xx); all else raw.
    return json_encode($s, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES
        | JSON_UNESCAPED_LINE_TERMINATORS | JSON_THROW_ON_ERROR);
}

// A double as JavaScript's Number#toString spells it (ECMA-262, Number::toString).
function jcs_number(float $f): string
{
    if (!is_finite($f)) {
        throw new InvalidArgumentException('NaN and INF are not JSON');
    }
    if ($f == 0.0) {
        return '0'; // also -0.0
    }
    // With serialize_precision -1 (PHP's default), var_export prints the shortest digits
    // that round-trip, e.g. "1.0E+21", "0.1".
    $saved = ini_set('serialize_precision', '-1');
    $shortest = strtolower(var_export(abs($f), true));
    ini_set('serialize_precision', $saved);
    $parts = explode('e', $shortest);
    $mantissa = explode('.', $parts[0]);
    $digits = $mantissa[0] . ($mantissa[1] ?? '');
    $n = strlen($mantissa[0]) + (int) ($parts[1] ?? 0); // value = 0.DIGITS * 10^n
    $stripped = ltrim($digits, '0');
    $n -= strlen($digits) - strlen($stripped);
    $digits = rtrim($stripped, '0');
    $k = strlen($digits);
    if ($k <= $n && $n <= 21) {
        $out = $digits . str_repeat('0', $n - $k);
    } elseif ($n > 0 && $n <= 21) {
        $out = substr($digits, 0, $n) . '.' . substr($digits, $n);
    } elseif ($n > -6 && $n <= 0) {
        $out = '0.' . str_repeat('0', -$n) . $digits;
    } else {
        $e = $n - 1;
        $out = ($k === 1 ? $digits : $digits[0] . '.' . substr($digits, 1))
            . 'e' . ($e < 0 ? '-' : '+') . abs($e);
    }
    return ($f < 0 ? '-' : '') . $out;
}
