// RFC 8785 JSON Canonicalization Scheme (JCS) for a Jackson JsonNode.
// No JCS library could be installed where these recipes are tested (Maven Central is out of
// reach there), so this is a small, complete implementation, checked against the shared
// test vectors. Needs jackson-databind.
import com.fasterxml.jackson.databind.JsonNode;
import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

public final class Jcs {
    private static final long MAX_SAFE_INTEGER = 9007199254740991L;

    private Jcs() {}

    public static String canonicalize(JsonNode node) {
        StringBuilder out = new StringBuilder();
        write(node, out);
        return out.toString();
    }

    private static void write(JsonNode node, StringBuilder out) {
        if (node.isObject()) {
            List<String> keys = new ArrayList<>();
            node.fieldNames().forEachRemaining(keys::add);
            // String.compareTo compares UTF-16 code units: exactly the order RFC 8785 wants.
            keys.sort(String::compareTo);
            out.append('{');
            for (int i = 0; i < keys.size(); i++) {
                if (i > 0) out.append(',');
                writeString(keys.get(i), out);
                out.append(':');
                write(node.get(keys.get(i)), out);
            }
            out.append('}');
        } else if (node.isArray()) {
            out.append('[');
            Iterator<JsonNode> it = node.elements();
            for (int i = 0; it.hasNext(); i++) {
                if (i > 0) out.append(',');
                write(it.next(), out);
            }
            out.append(']');
        } else if (node.isTextual()) {
            writeString(node.textValue(), out);
        } else if (node.isIntegralNumber()) {
            if (!node.canConvertToLong() || Math.abs(node.longValue()) > MAX_SAFE_INTEGER) {
                throw new IllegalArgumentException("integer " + node + " is beyond ±(2^53-1)");
            }
            out.append(node.longValue());
        } else if (node.isNumber()) {
            out.append(formatNumber(node.doubleValue()));
        } else if (node.isBoolean()) {
            out.append(node.booleanValue());
        } else if (node.isNull()) {
            out.append("null");
        } else {
            throw new IllegalArgumentException("cannot canonicalize " + node.getNodeType());
        }
    }

    /** Escapes only ", \ and control characters; everything else is written as is. */
    private static void writeString(String s, StringBuilder out) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
                    else out.append(c);
                }
            }
        }
        out.append('"');
    }

    /** A double as JavaScript's Number#toString spells it (ECMA-262, Number::toString). */
    static String formatNumber(double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) {
            throw new IllegalArgumentException("NaN and Infinity are not JSON");
        }
        if (d == 0) return "0"; // also -0.0
        // Double.toString is not always the shortest before Java 19 (4.9E-324 for 5e-324),
        // so find the fewest significant digits that still read back as the same double.
        BigDecimal exact = new BigDecimal(Math.abs(d));
        BigDecimal best = null;
        for (int p = 1; p <= 17 && best == null; p++) {
            BigDecimal nearest = exact.round(new MathContext(p, RoundingMode.HALF_EVEN));
            BigDecimal unit = BigDecimal.ONE.scaleByPowerOfTen(nearest.precision() - nearest.scale() - p);
            // Near a power of two the nearest p-digit number may miss while a neighbour reads back.
            for (BigDecimal c : new BigDecimal[] {nearest, nearest.subtract(unit), nearest.add(unit)}) {
                if (c.signum() > 0 && c.doubleValue() == Math.abs(d)
                        && (best == null || c.subtract(exact).abs().compareTo(best.subtract(exact).abs()) < 0)) {
                    best = c;
                }
            }
        }
        best = best.stripTrailingZeros();
        String digits = best.unscaledValue().toString();
        int k = digits.length();
        int n = k - best.scale(); // value = 0.DIGITS * 10^n
        String out;
        if (k <= n && n <= 21) {
            out = digits + "0".repeat(n - k);
        } else if (n > 0 && n <= 21) {
            out = digits.substring(0, n) + "." + digits.substring(n);
        } else if (n > -6 && n <= 0) {
            out = "0." + "0".repeat(-n) + digits;
        } else {
            int e = n - 1;
            out = (k == 1 ? digits : digits.charAt(0) + "." + digits.substring(1))
                    + "e" + (e < 0 ? "-" : "+") + Math.abs(e);
        }
        return d < 0 ? "-" + out : out;
    }
}
