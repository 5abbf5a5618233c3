// Regenerate: node crates/vouch-core/tests/data/jcs_vectors.js > crates/vouch-core/tests/data/jcs_vectors.jsonl
// Each output line is [input JSON text, its canonical form]: keys sorted by Array.prototype.sort
// (UTF-16 code units) and JSON.stringify for strings and numbers (ECMAScript number forms).
function canon(v){ if(Array.isArray(v)) return '['+v.map(canon).join(',')+']';
 if(v!==null && typeof v==='object'){ return '{'+Object.keys(v).sort().map(k=>JSON.stringify(k)+':'+canon(v[k])).join(',')+'}'; }
 return JSON.stringify(v); }
const inputs = [
 '{"\\u00e9":1,"\\ud83d\\ude00":2,"\\ufb33":3,"a":4,"B":5}',
 '{"n":[1e21,1e-7,0.1,-0,5e-324,1e20,123456789.123456789,-1.5e-10,9007199254740992,-9007199254740992,2.5e+25,0.000001,1e-6,100,1E2]}',
 '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
 '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control","\\u00f6":"Latin Small Letter O With Diaeresis"}',
 '{"user":{"name":"Zoë","tags":["b","a"],"nested":{"z":null,"y":{"x":[{}, []]}}},"emoji":"👋\\u2028\\u001f","ctrl":"\\b\\f\\n\\r\\t\\u0000\\u007f"}',
 '{"price":19.99,"ratio":0.30000000000000004,"big":1.7976931348623157e308,"small":-2.2250738585072014e-308,"x":1.0,"y":-0.0}'
];
for (const i of inputs) console.log(JSON.stringify([i, canon(JSON.parse(i))]));
