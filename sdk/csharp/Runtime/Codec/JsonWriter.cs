using System;
using System.Globalization;
using System.Text;

namespace Moonforge
{
    /// <summary>
    /// Writes messages as protojson does with proto field names: 64-bit integers as strings, bytes as
    /// base64, enums by name (by number when unknown), NaN and infinities as strings. For logs and
    /// tests, not for the wire. Not safe for concurrent use.
    /// </summary>
    public sealed class JsonWriter
    {
        private readonly StringBuilder sb = new StringBuilder();
        private bool needComma;

        /// <summary>The JSON written so far.</summary>
        public override string ToString()
        {
            return sb.ToString();
        }

        /// <summary>Starts an object.</summary>
        public void BeginObject()
        {
            Separate();
            sb.Append('{');
            needComma = false;
        }

        /// <summary>Ends an object.</summary>
        public void EndObject()
        {
            sb.Append('}');
            needComma = true;
        }

        /// <summary>Starts an array.</summary>
        public void BeginArray()
        {
            Separate();
            sb.Append('[');
            needComma = false;
        }

        /// <summary>Ends an array.</summary>
        public void EndArray()
        {
            sb.Append(']');
            needComma = true;
        }

        /// <summary>Writes an object member's name; its value follows.</summary>
        public void Name(string name)
        {
            Separate();
            Quote(name);
            sb.Append(':');
            needComma = false;
        }

        /// <summary>Writes an int32, sint32 or sfixed32 as a number.</summary>
        public void Value(int v) { Separate(); sb.Append(v.ToString(CultureInfo.InvariantCulture)); }

        /// <summary>Writes a uint32 or fixed32 as a number.</summary>
        public void Value(uint v) { Separate(); sb.Append(v.ToString(CultureInfo.InvariantCulture)); }

        /// <summary>Writes an int64, sint64 or sfixed64 as a string.</summary>
        public void Value(long v) { Separate(); sb.Append('"').Append(v.ToString(CultureInfo.InvariantCulture)).Append('"'); }

        /// <summary>Writes a uint64 or fixed64 as a string.</summary>
        public void Value(ulong v) { Separate(); sb.Append('"').Append(v.ToString(CultureInfo.InvariantCulture)).Append('"'); }

        /// <summary>Writes a bool.</summary>
        public void Value(bool v) { Separate(); sb.Append(v ? "true" : "false"); }

        /// <summary>Writes a float with the digits that read back as the same float.</summary>
        public void Value(float v)
        {
            Separate();
            if (Special(v)) return;
            string s = v.ToString("R", CultureInfo.InvariantCulture);
            float back;
            if (!float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out back) || back != v)
            {
                s = v.ToString("G9", CultureInfo.InvariantCulture);
            }
            sb.Append(s);
        }

        /// <summary>Writes a double with the digits that read back as the same double.</summary>
        public void Value(double v)
        {
            Separate();
            if (Special(v)) return;
            string s = v.ToString("R", CultureInfo.InvariantCulture);
            double back;
            if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out back) || back != v)
            {
                s = v.ToString("G17", CultureInfo.InvariantCulture);
            }
            sb.Append(s);
        }

        /// <summary>Writes a string.</summary>
        public void Value(string v)
        {
            Separate();
            Quote(v ?? "");
        }

        /// <summary>Writes bytes as standard base64 with padding.</summary>
        public void Value(byte[] v)
        {
            Separate();
            sb.Append('"').Append(Convert.ToBase64String(v ?? new byte[0])).Append('"');
        }

        /// <summary>Writes a message as an object; null as {}.</summary>
        public void Value(IMessage v)
        {
            if (v == null)
            {
                BeginObject();
                EndObject();
                return;
            }
            v.WriteJson(this);
        }

        /// <summary>Writes an enum value by name, or by number when name is null (a number the schema lacks).</summary>
        public void EnumValue(string name, int number)
        {
            if (name == null)
            {
                Value(number);
                return;
            }
            Value(name);
        }

        private bool Special(double v)
        {
            if (double.IsNaN(v)) sb.Append("\"NaN\"");
            else if (double.IsPositiveInfinity(v)) sb.Append("\"Infinity\"");
            else if (double.IsNegativeInfinity(v)) sb.Append("\"-Infinity\"");
            else if (v == 0 && BitConverter.DoubleToInt64Bits(v) != 0) sb.Append("-0");
            else return false;
            return true;
        }

        private void Separate()
        {
            if (needComma) sb.Append(',');
            needComma = true;
        }

        private void Quote(string s)
        {
            sb.Append('"');
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    case '\b': sb.Append("\\b"); break;
                    case '\f': sb.Append("\\f"); break;
                    default:
                        if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else sb.Append(c);
                        break;
                }
            }
            sb.Append('"');
        }
    }
}
