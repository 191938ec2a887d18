using System;
using System.IO;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using Demo;

namespace Moonforge.Tests
{
    /// <summary>
    /// TCP over TLS (SslStream) against `moonforge run -dev` and its self-signed certificate: login
    /// and a request, refresh, logout without reconnecting, and the refusals of a certificate for
    /// another name and of an untrusted one.
    /// </summary>
    internal static class TlsTests
    {
        internal static int Run(string host, int tlsPort, string certFile)
        {
            var check = new Check();
            X509Certificate2 root = ReadPem(certFile);
            try
            {
                Scenario(check, host, tlsPort, root);
            }
            catch (Exception e)
            {
                check.Fail("tls scenario stopped: " + e);
            }
            check.True(Refused(host, tlsPort, root, "other.example"), "a certificate for another name is refused");
            check.True(Refused(host, tlsPort, null, "localhost"), "an untrusted certificate is refused");
            return check.Finish("tls");
        }

        // ReadPem loads the first certificate of a PEM file.
        private static X509Certificate2 ReadPem(string file)
        {
            var m = Regex.Match(File.ReadAllText(file), "-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", RegexOptions.Singleline);
            if (!m.Success) throw new InvalidDataException(file + " holds no PEM certificate");
            return new X509Certificate2(Convert.FromBase64String(Regex.Replace(m.Groups[1].Value, "\\s", "")));
        }

        private static MoonforgeClient NewClient(string host, int port, X509Certificate2 root, string name)
        {
            return new MoonforgeClient(new ClientOptions
            {
                Host = host,
                Port = port,
                UseTls = true,
                TlsServerName = name,
                TlsTrustedRoot = root,
                Reconnect = true,
                ReconnectDelay = TimeSpan.FromMilliseconds(100),
                ConnectTimeout = TimeSpan.FromSeconds(10),
                Log = s => Console.WriteLine("  [tls] " + s),
            });
        }

        // Pump calls Update, as a game's main loop does, until task ends.
        private static T Pump<T>(MoonforgeClient c, Task<T> task)
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!task.IsCompleted)
            {
                if (DateTime.UtcNow > deadline) throw new TimeoutException("no answer within 20 s");
                c.Update();
                Thread.Sleep(5);
            }
            return task.GetAwaiter().GetResult();
        }

        private static void Scenario(Check check, string host, int port, X509Certificate2 root)
        {
            using (var c = NewClient(host, port, root, "localhost"))
            {
                bool disconnected = false, reconnecting = true;
                c.EventRaised += (ev, info) =>
                {
                    if (ev == ClientEvent.Disconnected)
                    {
                        disconnected = true;
                        reconnecting = info.WillReconnect;
                    }
                };
                Pump(c, c.ConnectAsync().ContinueWith(t => { t.GetAwaiter().GetResult(); return true; }));
                string device = "cs-tls-" + Guid.NewGuid().ToString("N");
                LoginAck login = Pump(c, c.LoginGuestAsync(device));
                check.True(login.PlayerId != "" && login.RefreshToken != "" && login.RefreshExpiresAtMs > login.ExpiresAtMs, "LoginAck with a refresh token over TLS");
                StatsAck stats = Pump(c, c.RequestAsync<StatsAck>(new StatsReq()));
                check.True(stats != null, "a request over TLS");
                RefreshAck refreshed = Pump(c, c.RefreshAsync());
                check.True(refreshed.Token != "" && refreshed.RefreshToken != login.RefreshToken, "RefreshAck with new tokens");
                check.Equal(refreshed.Token, c.Token, "the client keeps the refreshed token");
                Pump(c, c.LogoutAsync());
                var until = DateTime.UtcNow.AddSeconds(10);
                while (!disconnected && DateTime.UtcNow < until)
                {
                    c.Update();
                    Thread.Sleep(5);
                }
                check.True(disconnected && !reconnecting, "the connection ends after logout, without a reconnect");
                check.True(c.Token == null, "no token after logout");
            }
        }

        private static bool Refused(string host, int port, X509Certificate2 root, string name)
        {
            using (var c = NewClient(host, port, root, name))
            {
                try
                {
                    Pump(c, c.ConnectAsync().ContinueWith(t => { t.GetAwaiter().GetResult(); return true; }));
                    return false;
                }
                catch (MoonforgeException e)
                {
                    return e.Code == ErrorCode.Unavailable;
                }
            }
        }
    }
}
