using System.Runtime.InteropServices;

namespace Moonforge
{
    /// <summary>Reinterprets a float's bits without unsafe code or allocation (BitConverter has no
    /// float form on every profile Unity targets).</summary>
    [StructLayout(LayoutKind.Explicit)]
    internal struct FloatBits
    {
        [FieldOffset(0)] private float f;
        [FieldOffset(0)] private uint u;

        internal static uint ToBits(float value)
        {
            var b = new FloatBits();
            b.f = value;
            return b.u;
        }

        internal static float ToFloat(uint bits)
        {
            var b = new FloatBits();
            b.u = bits;
            return b.f;
        }
    }
}
