from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('teach', '0003_lab_kind'),
    ]

    operations = [
        migrations.AlterField(
            model_name='lab',
            name='kind',
            field=models.CharField(choices=[('overlap', 'Overlapping IPs'), ('routed', 'Routed overlapping IPs'), ('ipv6', 'Three IPv6 modes')], default='overlap', max_length=16),
        ),
    ]
